"""Simple (non-member) commits: a consumer with a group.id that assign()s partitions commits
without ever joining the group, and a later consumer of that group.id resumes from there.

On a 2-partition topic holding messages 0..39 (20 per partition):
- consumer A (confluent-kafka, --group, assign() of both partitions, no committed offsets so
  auto.offset.reset=earliest applies) reads all 40, commits synchronously (OffsetCommit with
  generation -1 and no member id), sees committed() return offset 20 on both, and closes;
- messages 40..49 are produced (log end offset 25 on both partitions);
- consumer B, a new process-level client of the same group.id, assign()s both partitions
  without offsets: it must start at the committed offset 20 and read exactly 40..49, each
  once; it closes without committing, so the group keeps 20 and a lag of 5 per partition for
  the Rust test's `riffle groups describe`.
"""

import time

from confluent_kafka import TopicPartition

from common import CLIENT_TIMEOUT_S, check, confluent_consumer, create_topic, parser
from group_common import index_of_message_key, produce_indexed

PARTITIONS = 2
FIRST_COUNT = 40
SECOND_COUNT = 10
COMMITTED_OFFSET = FIRST_COUNT // PARTITIONS


def assigned_consumer(args, client_id):
    """A consumer of --group that assign()s every partition at its committed offset (none
    given, so the client asks OffsetFetch) and stores each consumed offset for commit()."""
    consumer = confluent_consumer(args.bootstrap, args.topic, {
        'group.id': args.group, 'client.id': client_id, 'enable.auto.offset.store': True})
    consumer.assign([TopicPartition(args.topic, partition) for partition in range(PARTITIONS)])
    return consumer


def consume(consumer, count):
    """Polls until `count` messages arrived, then a little longer to catch extras; returns
    (partition, offset, index) for each."""
    consumed = []
    deadline = time.monotonic() + CLIENT_TIMEOUT_S
    while len(consumed) < count and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            consumed.append((message.partition(), message.offset(),
                             index_of_message_key(message.key().decode())))
    quiet_until = time.monotonic() + 1
    while time.monotonic() < quiet_until:
        message = consumer.poll(0.2)
        if message is not None and message.error() is None:
            consumed.append((message.partition(), message.offset(),
                             index_of_message_key(message.key().decode())))
    return consumed


def main():
    arguments = parser(__doc__)
    arguments.add_argument('--topic', required=True)
    arguments.add_argument('--group', required=True)
    args = arguments.parse_args()
    create_topic(args.bootstrap, args.topic, PARTITIONS)
    produce_indexed(args.bootstrap, args.topic, range(FIRST_COUNT), PARTITIONS)

    first = assigned_consumer(args, 'assign-commit-first')
    read = consume(first, FIRST_COUNT)
    check(sorted(index for _, _, index in read) == list(range(FIRST_COUNT)),
          f'consumer A read {sorted(index for _, _, index in read)}, expected 0..{FIRST_COUNT - 1}')
    first.commit(asynchronous=False)
    committed = first.committed([TopicPartition(args.topic, partition)
                                 for partition in range(PARTITIONS)], timeout=CLIENT_TIMEOUT_S)
    check([(entry.partition, entry.offset) for entry in committed]
          == [(partition, COMMITTED_OFFSET) for partition in range(PARTITIONS)],
          f'committed() after a synchronous commit: {committed}')
    first.close()
    print(f'consumer A committed offset {COMMITTED_OFFSET} on both partitions without joining')

    produce_indexed(args.bootstrap, args.topic, range(FIRST_COUNT, FIRST_COUNT + SECOND_COUNT),
                    PARTITIONS)
    second = assigned_consumer(args, 'assign-commit-second')
    read = consume(second, SECOND_COUNT)
    second.close()
    expected = sorted(range(FIRST_COUNT, FIRST_COUNT + SECOND_COUNT))
    check(sorted(index for _, _, index in read) == expected,
          f'consumer B read {sorted(index for _, _, index in read)}, expected {expected}')
    first_offsets = {partition: min(offset for p, offset, _ in read if p == partition)
                     for partition in range(PARTITIONS)}
    check(first_offsets == {partition: COMMITTED_OFFSET for partition in range(PARTITIONS)},
          f'consumer B started at {first_offsets}, expected the committed offset')
    print('consumer B resumed from the committed offsets')


if __name__ == '__main__':
    main()
