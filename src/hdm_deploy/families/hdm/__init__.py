"""HDM (Liang et al., ACM MM 2022): network, checkpoints, the DCP prior, the exported frame path."""
