import os
import time
import uuid

from rdevents.ids import new_request_id, new_uuid, new_uuids


def test_new_uuid_is_a_version_7_uuid_of_the_current_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    made = new_uuid()
    after = time.time_ns() // 1_000_000
    parsed = uuid.UUID(made)
    assert str(parsed) == made  # lower case, dashed, as str(uuid.UUID) writes it
    assert (parsed.version, parsed.variant) == (7, uuid.RFC_4122)
    assert before <= parsed.int >> 80 <= after


def test_new_uuids_made_later_sort_later_and_never_repeat() -> None:
    earlier = [new_uuid() for _ in range(1_000)]
    time.sleep(0.002)  # the next millisecond at least
    later = [new_uuid() for _ in range(1_000)]
    assert max(earlier) < min(later)
    assert len(set(earlier + later)) == 2_000
    # Within one millisecond they differ in their random bits, all of which vary.
    random_bits = [uuid.UUID(u).int & ((1 << 80) - 1) for u in earlier]
    varying = 0
    for bits in random_bits[1:]:
        varying |= bits ^ random_bits[0]
    assert varying == (1 << 80) - 1 & ~((0xF << 76) | (0xC << 60))


def test_uuids_made_together_are_new_uuids_kind_of_the_same_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    made = new_uuids(1_000)
    after = time.time_ns() // 1_000_000
    assert len(set(made)) == 1_000
    assert new_uuids(0) == []
    for text in made:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert (parsed.version, parsed.variant) == (7, uuid.RFC_4122)
        assert before <= parsed.int >> 80 <= after
    time.sleep(0.002)  # the next millisecond at least
    assert max(made) < new_uuid() and max(made) < min(new_uuids(10))
    varying = 0
    for text in made[1:]:
        varying |= uuid.UUID(text).int ^ uuid.UUID(made[0]).int
    assert varying & ((1 << 80) - 1) == (1 << 80) - 1 & ~((0xF << 76) | (0xC << 60))


def test_a_forked_child_makes_ids_of_its_own() -> None:
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.write(writer, (new_uuid() + new_request_id()).encode())
        os._exit(0)
    os.close(writer)
    os.waitpid(pid, 0)
    child = os.read(reader, 100).decode()
    os.close(reader)
    mine = new_uuid() + new_request_id()
    assert child[19:36] != mine[19:36]  # the random part of the uuid
    assert child[36:] != mine[36:]
