"""The real test environment: a Kubernetes control plane with a test kubelet, MinIO and Prometheus,
all on 127.0.0.1, started by the pytest fixtures in `pytest_plugin` or by hand with
`python -m tests.cluster up`. See README.md in this directory.
"""
