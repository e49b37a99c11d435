"""Which networks a docker task gets: AcceptNetworkedJobs (ours) and RejectNetworkedJobs (Bacalhau's)."""

from __future__ import annotations

import pytest

from bacalhau.compute.executors.docker_policy import DockerPolicy
from bacalhau.models.job import NetworkConfig

NETWORKED = ("Host", "Full", "HTTP", "Bridge")


@pytest.mark.parametrize("kind", ["None", "Default", ""])
def test_no_network_is_always_granted(kind: str) -> None:
    for policy in (DockerPolicy(), DockerPolicy(accept_networked_jobs=True, reject_networked_jobs=True)):
        assert policy.network_refusal(NetworkConfig(Type=kind)) is None


@pytest.mark.parametrize("kind", NETWORKED)
def test_networked_jobs_need_accept_and_no_reject(kind: str) -> None:
    refused = DockerPolicy().network_refusal(NetworkConfig(Type=kind))
    assert refused is not None and "JobAdmissionControl.AcceptNetworkedJobs=true" in refused.message
    assert DockerPolicy(accept_networked_jobs=True).network_refusal(NetworkConfig(Type=kind)) is None
    rejected = DockerPolicy(accept_networked_jobs=True, reject_networked_jobs=True).network_refusal(NetworkConfig(Type=kind))
    assert rejected is not None
    assert rejected.message.startswith("this node does not run jobs that require network access")
    assert "RejectNetworkedJobs=true" in rejected.message


def test_an_unknown_network_type_is_named() -> None:
    refused = DockerPolicy(accept_networked_jobs=True).network_refusal(NetworkConfig(Type="Moon"))
    assert refused is not None and "unknown network type 'Moon'" in refused.message


def test_ports_are_declined_not_silently_dropped() -> None:
    network = NetworkConfig.model_validate({"Type": "Bridge", "Ports": [{"Name": "web", "Target": 8080}]})
    refused = DockerPolicy(accept_networked_jobs=True).network_refusal(network)
    assert refused is not None and refused.path == "Network.Ports", refused
    assert "does not publish ports yet (the job asks for 1)" in refused.message
