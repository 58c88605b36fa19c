"""Policy search on Gymnasium tasks (``pip install 'es-ngd[gym]'``); nothing here is imported by ``import es_ngd``."""
