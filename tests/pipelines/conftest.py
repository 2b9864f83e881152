import pytest


@pytest.fixture(scope="session")
def client():
    """An in-process Dask cluster (threads), fast to start, shared by the modules that compute on stores;
    the tests of real worker processes start their own."""
    import logging

    from distributed import Client, LocalCluster
    cluster = LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0",
                           silence_logs=logging.ERROR)
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()
