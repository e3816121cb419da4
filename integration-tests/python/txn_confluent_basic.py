"""confluent-kafka (librdkafka) transactions: commit, abort, and what each isolation level reads.

Three transactions each write 10 records to partition 0 and 5 to partition 1 of a new topic;
the second is aborted after all its records were acknowledged (flush), so they are in the log.
Partition 0 then holds first 0-9 + marker 10, aborted 11-20 + marker 21, second 22-31 +
marker 32; partition 1 first 0-4 + 5, aborted 6-10 + 11, second 12-16 + 17. A read_committed
consumer and one with librdkafka's default isolation level (read_committed) get only the two
committed transactions; read_uncommitted gets all three. With nothing open, ListOffsets at
every level answers the high watermark.
"""

from common import CLIENT_TIMEOUT_S, create_topic, parser
from txn_common import (expect_view, flush, labelled, produce_values, start_watchdog,
                        transactional_producer)

# Records per transaction on partitions 0 and 1.
COUNTS = {0: 10, 1: 5}


def run_transaction(producer, topic, label, commit):
    producer.begin_transaction()
    for partition, count in COUNTS.items():
        produce_values(producer, topic, partition, labelled(f'{label}-p{partition}', count))
    flush(producer)
    if commit:
        producer.commit_transaction(CLIENT_TIMEOUT_S)
    else:
        producer.abort_transaction(CLIENT_TIMEOUT_S)
    print(f'transaction {label}: {"committed" if commit else "aborted"}')


def expected_records(partition, labels):
    """[(offset, value)] for the transactions named in `labels`, out of first/aborted/second,
    each followed by its marker."""
    count = COUNTS[partition]
    records = []
    for number, label in enumerate(['first', 'aborted', 'second']):
        if label in labels:
            records += labelled(f'{label}-p{partition}', count, number * (count + 1))
    return records


def main():
    arguments = parser(__doc__)
    arguments.add_argument('--topic', required=True)
    args = arguments.parse_args()
    start_watchdog()
    create_topic(args.bootstrap, args.topic, 2)
    producer = transactional_producer(args.bootstrap, f'{args.topic}-txn')
    producer.init_transactions(CLIENT_TIMEOUT_S)
    run_transaction(producer, args.topic, 'first', commit=True)
    run_transaction(producer, args.topic, 'aborted', commit=False)
    run_transaction(producer, args.topic, 'second', commit=True)

    for partition, count in COUNTS.items():
        end = 3 * (count + 1)
        committed = expected_records(partition, ['first', 'second'])
        everything = expected_records(partition, ['first', 'aborted', 'second'])
        expect_view(args.bootstrap, args.topic, partition, 'read_committed', committed, end)
        expect_view(args.bootstrap, args.topic, partition, None, committed, end)
        expect_view(args.bootstrap, args.topic, partition, 'read_uncommitted', everything, end)
    print('committed transactions visible to read_committed, aborted ones only to '
          'read_uncommitted')


if __name__ == '__main__':
    main()
