"""`deja replay`: a labelled request stream through a running Déjà, counting wrong hits."""
