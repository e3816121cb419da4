"""kafka-python 3.0's admin client on transactions: ListTransactions, DescribeTransactions and
DescribeProducers show an ongoing transaction with its producer id, epoch and partitions, and
end_offsets() of a read_committed consumer stops at each partition's first open record.

Three plain (non-idempotent, confluent-kafka) records go to A/0 first. A kafka-python
transactional producer (transaction_timeout_ms 45000) then writes 2 records each to A/0, A/1
and B/0 and flushes, leaving the transaction open:
- ListTransactions lists the id with the producer's id and state Ongoing (also with an
  Ongoing or a producer-id filter; not with a CompleteCommit filter);
- DescribeTransactions gives Ongoing, the producer id and epoch, the timeout, a start time
  between just before begin and now, and exactly those three partitions; an unknown id gets
  TRANSACTIONAL_ID_NOT_FOUND;
- DescribeProducers lists the producer on each partition with its epoch, last sequence 1 and
  the transaction's first offset there (3 on A/0, 0 elsewhere);
- end_offsets() is 3/0/0 for read_committed and 5/2/2 for read_uncommitted.
After the commit: CompleteCommit with no partitions and the same producer id and epoch
(transactions v1 keeps the epoch), not listed as Ongoing, no open transaction in
DescribeProducers (-1), and end_offsets() 6/3/3 at both levels.
"""

import time

from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient
from kafka.errors import TransactionalIdNotFoundError
from kafka.structs import TopicPartition

from common import CLIENT_TIMEOUT_S, check, confluent_producer, create_topic, fail, parser
from txn_common import flush, labelled, produce_values, start_watchdog

TIMEOUT_MS = CLIENT_TIMEOUT_S * 1000
TRANSACTION_TIMEOUT_MS = 45000


def listings(admin, **filters):
    """Every TransactionListing from every broker."""
    by_broker = admin.list_transactions(**filters)
    return [listing for listed in by_broker.values() for listing in listed]


def end_offsets(bootstrap, partitions, isolation):
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, isolation_level=isolation,
                             request_timeout_ms=TIMEOUT_MS + 5000)
    offsets = consumer.end_offsets(partitions)
    consumer.close()
    return [offsets[partition] for partition in partitions]


def expect_end_offsets(bootstrap, partitions, committed, uncommitted, when):
    for isolation, expected in [('read_committed', committed), ('read_uncommitted', uncommitted)]:
        got = end_offsets(bootstrap, partitions, isolation)
        check(got == expected, f'{when}: end_offsets() as {isolation} for {partitions} is {got}, '
                               f'expected {expected}')
    print(f'{when}: end offsets read_committed {committed}, read_uncommitted {uncommitted}')


def check_ongoing(admin, transactional_id, producer_id, epoch, partitions, began_ms):
    listed = [entry for entry in listings(admin) if entry.transactional_id == transactional_id]
    check(len(listed) == 1, f'ListTransactions lists {transactional_id} {len(listed)} times: '
                            f'{listings(admin)}')
    check((listed[0].producer_id, listed[0].state.value) == (producer_id, 'Ongoing'),
          f'ListTransactions: {listed[0]}, expected producer id {producer_id}, Ongoing')
    ongoing = [entry.transactional_id for entry in listings(admin, state_filters=['Ongoing'])]
    check(transactional_id in ongoing, f'Ongoing filter lists {ongoing}')
    by_producer = [entry.transactional_id
                   for entry in listings(admin, producer_id_filters=[producer_id])]
    check(by_producer == [transactional_id], f'producer id filter lists {by_producer}')
    completed = [entry.transactional_id
                 for entry in listings(admin, state_filters=['CompleteCommit'])]
    check(transactional_id not in completed, f'CompleteCommit filter lists {completed}')

    described = admin.describe_transactions([transactional_id])[transactional_id]
    now_ms = int(time.time() * 1000)
    check(described.state.value == 'Ongoing', f'DescribeTransactions: {described}')
    check((described.producer_id, described.producer_epoch) == (producer_id, epoch),
          f'DescribeTransactions: {described}, expected producer {producer_id} epoch {epoch}')
    check(described.transaction_timeout_ms == TRANSACTION_TIMEOUT_MS,
          f'DescribeTransactions timeout: {described.transaction_timeout_ms}')
    check(began_ms - 1000 <= described.transaction_start_time_ms <= now_ms + 1000,
          f'DescribeTransactions start time {described.transaction_start_time_ms}, expected '
          f'between {began_ms} and {now_ms}')
    check(described.topic_partitions == set(partitions),
          f'DescribeTransactions partitions {described.topic_partitions}, expected {partitions}')
    try:
        admin.describe_transactions(['no-such-transactional-id'])
        fail('DescribeTransactions of an unknown id succeeded')
    except TransactionalIdNotFoundError:
        pass
    print(f'ListTransactions and DescribeTransactions: {transactional_id} Ongoing, producer '
          f'{producer_id} epoch {epoch}, partitions {sorted(partitions)}')


def check_producers(admin, partitions, producer_id, epoch, first_offsets):
    """DescribeProducers: the producer on each partition with its open transaction's first
    offset (-1 for none)."""
    described = admin.describe_producers(partitions)
    for partition, first_offset in zip(partitions, first_offsets):
        active = [producer for producer in described[partition].active_producers
                  if producer.producer_id == producer_id]
        check(len(active) == 1, f'DescribeProducers {partition}: '
                                f'{described[partition].active_producers}, expected producer '
                                f'{producer_id} once')
        state = active[0]
        check((state.producer_epoch, state.last_sequence,
               state.current_transaction_start_offset) == (epoch, 1, first_offset),
              f'DescribeProducers {partition}: {state}, expected epoch {epoch}, last sequence '
              f'1, transaction start offset {first_offset}')
    print(f'DescribeProducers: producer {producer_id} with transaction start offsets '
          f'{first_offsets}')


def main():
    arguments = parser(__doc__)
    arguments.add_argument('--topic', required=True)
    args = arguments.parse_args()
    start_watchdog()
    topic_a, topic_b = f'{args.topic}-a', f'{args.topic}-b'
    create_topic(args.bootstrap, topic_a, 2)
    create_topic(args.bootstrap, topic_b, 1)
    plain = confluent_producer(args.bootstrap)
    produce_values(plain, topic_a, 0, labelled('plain', 3))
    flush(plain)
    partitions = [TopicPartition(topic_a, 0), TopicPartition(topic_a, 1),
                  TopicPartition(topic_b, 0)]

    transactional_id = f'{args.topic}-txn'
    producer = KafkaProducer(bootstrap_servers=args.bootstrap, transactional_id=transactional_id,
                             transaction_timeout_ms=TRANSACTION_TIMEOUT_MS,
                             max_block_ms=TIMEOUT_MS, request_timeout_ms=TIMEOUT_MS)
    producer.init_transactions()
    ids = producer._transaction_manager.producer_id_and_epoch
    producer_id, epoch = ids.producer_id, ids.epoch
    began_ms = int(time.time() * 1000)
    producer.begin_transaction()
    for partition in partitions:
        for value in labelled('open', 2):
            producer.send(partition.topic, value=value.encode(), partition=partition.partition)
    producer.flush(timeout=CLIENT_TIMEOUT_S)
    print(f'transaction open: producer id {producer_id}, epoch {epoch}')

    admin = KafkaAdminClient(bootstrap_servers=args.bootstrap, request_timeout_ms=TIMEOUT_MS)
    check_ongoing(admin, transactional_id, producer_id, epoch, partitions, began_ms)
    check_producers(admin, partitions, producer_id, epoch, [3, 0, 0])
    expect_end_offsets(args.bootstrap, partitions, [3, 0, 0], [5, 2, 2], 'open transaction')

    producer.commit_transaction()
    described = admin.describe_transactions([transactional_id])[transactional_id]
    check((described.state.value, described.producer_id, described.producer_epoch,
           described.topic_partitions) == ('CompleteCommit', producer_id, epoch, set()),
          f'DescribeTransactions after the commit: {described}')
    ongoing = [entry.transactional_id for entry in listings(admin, state_filters=['Ongoing'])]
    check(transactional_id not in ongoing, f'still listed as Ongoing after the commit: {ongoing}')
    listed = [entry for entry in listings(admin) if entry.transactional_id == transactional_id]
    check([entry.state.value for entry in listed] == ['CompleteCommit'],
          f'ListTransactions after the commit: {listed}')
    check_producers(admin, partitions, producer_id, epoch, [-1, -1, -1])
    expect_end_offsets(args.bootstrap, partitions, [6, 3, 3], [6, 3, 3], 'after the commit')
    producer.close(timeout=CLIENT_TIMEOUT_S)
    admin.close()
    print('transaction admin APIs describe the ongoing and the committed transaction')


if __name__ == '__main__':
    main()
