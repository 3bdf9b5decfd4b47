"""cargohold: a container image registry that speaks Quay's API and the OCI protocol."""

__version__ = "0.1.0"
