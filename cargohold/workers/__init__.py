"""Background workers. Each module registers its worker with `register`."""
