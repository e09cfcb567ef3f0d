"""MHNet (Gao et al., 2023): deblurring/deraining, the 2023 published code (see ``family.py``)."""
