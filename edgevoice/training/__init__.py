"""edgevoice-build: recordings and synthetic speech -> an INT8 model bundle for the daemon.

Stages (each a module): data, synth, augment, model, train, prune, quantize, evaluate, export;
`stages` runs them over a work directory and `cli` is the command line. TensorFlow is imported
only inside the functions that train or convert models.
"""
