"""Key ownership by partition: the same partitioner as Kafka's clients, ownership that follows
the consumer's assignment."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.partitions import PartitionOwnership, partition_for

# Kafka's own test vectors for its murmur2 (clients UtilsTest), as signed 32-bit results.
JAVA_MURMUR2 = {
    "21": -973932308,
    "foobar": -790332482,
    "a-little-bit-long-string": -985981536,
    "a-little-bit-longer-string": -1486304829,
    "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    "abc": 479470107,
}


@pytest.mark.parametrize(("key", "signed_hash"), JAVA_MURMUR2.items())
def test_partition_for_matches_the_java_default_partitioner(key: str, signed_hash: int) -> None:
    """partition = (murmur2(key) & 0x7fffffff) % n, as in Kafka's BuiltInPartitioner."""
    for count in (1, 6, 7, 12):
        assert partition_for(key, count) == (signed_hash & 0x7FFFFFFF) % count


@given(st.text(min_size=1), st.integers(min_value=1, max_value=64))
def test_partition_for_is_a_valid_partition(key: str, count: int) -> None:
    """Every key maps to one of the topic's partitions."""
    assert 0 <= partition_for(key, count) < count


@given(st.lists(st.text(min_size=1), min_size=1, max_size=50))
def test_complementary_assignments_own_every_key_exactly_once(keys: list[str]) -> None:
    """Two members holding complementary partitions own each key exactly once."""
    left, right = PartitionOwnership("t"), PartitionOwnership("t")
    left.assign({0, 2, 4}, 6)
    right.assign({1, 3, 5}, 6)
    for key in keys:
        assert left.owns(key) != right.owns(key)


async def test_ownership_before_assignment_owns_nothing_and_revocation_bumps_the_generation() -> (
    None
):
    """No key is owned until partitions are assigned; each change bumps the generation that
    per-key caches are keyed to."""
    ownership = PartitionOwnership("t")
    assert not ownership.owns("kpi.a")
    assert not await ownership.wait_assigned(timeout_s=0.01)
    ownership.assign(range(6), 6)
    assert ownership.owns("kpi.a")
    assert await ownership.wait_assigned(timeout_s=0.01)
    generation = ownership.generation
    ownership.revoke()
    assert not ownership.owns("kpi.a")
    assert ownership.generation == generation + 1


def test_everything_owns_every_key() -> None:
    """The single-writer mode (replay) owns every key without an assignment."""
    assert PartitionOwnership.everything().owns("anything")
