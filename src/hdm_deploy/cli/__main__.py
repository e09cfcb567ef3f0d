from hdm_deploy.cli.commands import main

main()
