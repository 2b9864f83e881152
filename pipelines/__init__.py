"""odg pipelines: inputs (ImageNet, UCF101), the Zarr event store, Dask builds, import/export,
statistics and the `odg` command line. Kernels live in `odg`, models in `models`."""
