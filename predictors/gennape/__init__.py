"""GENNAPE (Mills et al. 2023): a generalised accuracy predictor for computation graphs of any family.

``spectral`` (graph spectra), ``contrastive`` (the encoder and Eq. 1), ``clusters`` (FCM, Eqs. 2-4, and the
FLOPs transform, Eq. 5), ``heads`` (MLP ensembles, pairwise heads), ``model`` (the predictor, kind "gennape")
and ``protocol`` (zero-shot and fine-tuned transfer evaluation). Import the modules themselves: this package
imports nothing, so ``predictors`` stays free of torch until a graph predictor is asked for.
"""
