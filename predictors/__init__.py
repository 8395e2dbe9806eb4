"""hwnas predictors: a pure ML library (features in, predictions out). It never imports ``controller``."""
