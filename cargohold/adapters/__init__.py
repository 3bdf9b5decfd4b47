"""Adapters: one small module per outside tool the server drives.

- `outbound`: the outbound guard and the guarded HTTP client, for every connection to an
  address a user chose (mirrors, webhooks, build archives, upstream registries).
- `skopeo`: image copies and inspections between registries (mirrors, build base images
  and pushes).
- `buildah`: the command lines of rootless image builds.
- `sandbox`: what a build may touch on the host (build user, namespaces, nftables, cgroups).
- `git`: fetching and checking out build sources.
- `smtp`: handing a message to the mail server.
- `process`: child processes that die with the worker that started them.

The object store is the `storage` package's driver interface (`storage.base`), not an
adapter here. Adapters know the tools, never the rules: they never import `db`, `domain` or
the HTTP layers, and callers (domain functions and workers) turn their failures into the
caller's own errors.
"""
