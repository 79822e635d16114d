"""Object stores: one interface over a local directory and S3, with the same keys in both.

store = open_store("runs")                 # a directory
store = open_store("s3://bucket/prefix")   # S3 (endpoint and credentials from the environment)
"""

from proctor_jobs.store.base import KeyNotFound, Store, StoreError
from proctor_jobs.store.open import open_store

__all__ = ["KeyNotFound", "Store", "StoreError", "open_store"]
