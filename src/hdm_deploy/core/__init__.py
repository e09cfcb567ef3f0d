"""The torch-free core: errors, atomic files, the runner interface, frame checks, devices and the
contracts every package shares. Imports nothing else of hdm_deploy."""
