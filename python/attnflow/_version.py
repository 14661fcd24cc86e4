# The package's version: must equal AF_VERSION of include/attnflow/version.h
# (scripts/check_docs.sh checks it; attnflow.library_version() reports the
# version of the shared library actually loaded).
__version__ = "0.1.0"
