"""DiffHDR (Hu et al., TCSVT 2023): HDR deghosting from three exposures with a conditional diffusion model.

Torch-free: :mod:`.family` (facts), :mod:`.inputs` (exposures → condition, μ-law), :mod:`.sampler`
(patch DDIM over ONNX Runtime sessions). Torch: :mod:`.model`, :mod:`.checkpoint`, :mod:`.reference`
(the published procedure in PyTorch), :mod:`.export`.
"""
