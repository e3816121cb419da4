"""confluent-kafka zombie fencing: two producers with one transactional.id.

Part 1, a zombie with an open transaction: producer A begins a transaction and gets 5 records
acknowledged; producer B with the same transactional.id initializes, so the coordinator
aborts A's transaction and bumps the epoch. A then produces 5 late records and tries to commit:
librdkafka reports a fatal _FENCED (the partition answers INVALID_PRODUCER_EPOCH, the
coordinator PRODUCER_FENCED) and A takes no new transaction (begin_transaction() raises,
produce() raises _FATAL). B commits 5 records.
read_committed sees exactly B's 5 (offsets 6-10, after A's 0-4 and the abort marker at 5);
read_uncommitted also A's first 5, never its late ones.

Part 2, an idle zombie: A initializes, then B; A begins a transaction, produces 3 records and
commits: fenced, fatal, and none of its records reaches the log (AddPartitionsToTxn is refused
before anything is produced). B's 3 committed records are all the partition holds.
"""

from confluent_kafka import KafkaError, KafkaException

from common import CLIENT_TIMEOUT_S, check, create_topic, fail, parser
from txn_common import (expect_view, flush, kafka_error, labelled, produce_values,
                        start_watchdog, transactional_producer)

FENCED_CODES = (KafkaError._FENCED, KafkaError.PRODUCER_FENCED)


def expect_fenced(call, what):
    """Runs call() and checks it raises librdkafka's fatal fencing error."""
    try:
        call()
    except KafkaException as exception:
        error = kafka_error(exception)
        check(error.code() in FENCED_CODES,
              f'{what}: {error.name()} ({error.str()}), expected _FENCED or PRODUCER_FENCED')
        check(error.fatal(), f'{what}: {error.name()} is not fatal')
        print(f'{what}: fatal {error.name()}: {error.str()}')
        return
    fail(f'{what} succeeded, but a newer producer with the same transactional.id fenced it')


def expect_unusable(zombie, topic):
    """A fenced librdkafka producer takes no new transaction: begin_transaction() raises and
    produce() raises _FATAL."""
    try:
        zombie.begin_transaction()
        fail('A begin_transaction after being fenced succeeded')
    except KafkaException as exception:
        print(f'A begin_transaction after being fenced: {kafka_error(exception).name()}')
    try:
        zombie.produce(topic, value=b'after-fencing', partition=0)
        fail('A produce() after being fenced succeeded')
    except KafkaException as exception:
        error = kafka_error(exception)
        check(error.code() == KafkaError._FATAL,
              f'A produce() after being fenced: {error.name()}, expected _FATAL')
    print('A takes no new transaction')


def produce_allowing_fatal(producer, topic, values):
    """Queues records; once librdkafka knows it is fenced, produce() itself raises (fatal)."""
    try:
        produce_values(producer, topic, 0, values)
    except KafkaException as exception:
        error = kafka_error(exception)
        check(error.fatal(), f'produce() of a zombie raised a non-fatal {error.name()}')


def open_transaction_zombie(args):
    topic = f'{args.topic}-open'
    create_topic(args.bootstrap, topic, 1)
    transactional_id = f'{topic}-txn'
    zombie = transactional_producer(args.bootstrap, transactional_id)
    zombie.init_transactions(CLIENT_TIMEOUT_S)
    zombie.begin_transaction()
    produce_values(zombie, topic, 0, labelled('zombie-open', 5))
    flush(zombie)
    print('A: 5 records acknowledged in an open transaction')

    fresh = transactional_producer(args.bootstrap, transactional_id)
    fresh.init_transactions(CLIENT_TIMEOUT_S)
    print('B: initialized with the same transactional.id')

    produce_allowing_fatal(zombie, topic, labelled('zombie-late', 5))
    expect_fenced(lambda: zombie.commit_transaction(CLIENT_TIMEOUT_S), 'A commit_transaction')
    expect_unusable(zombie, topic)

    fresh.begin_transaction()
    produce_values(fresh, topic, 0, labelled('fresh', 5))
    fresh.commit_transaction(CLIENT_TIMEOUT_S)
    print('B: committed 5 records')

    expect_view(args.bootstrap, topic, 0, 'read_committed', labelled('fresh', 5, 6), 12)
    expect_view(args.bootstrap, topic, 0, 'read_uncommitted',
                labelled('zombie-open', 5, 0) + labelled('fresh', 5, 6), 12)


def idle_zombie(args):
    topic = f'{args.topic}-idle'
    create_topic(args.bootstrap, topic, 1)
    transactional_id = f'{topic}-txn'
    zombie = transactional_producer(args.bootstrap, transactional_id)
    zombie.init_transactions(CLIENT_TIMEOUT_S)
    fresh = transactional_producer(args.bootstrap, transactional_id)
    fresh.init_transactions(CLIENT_TIMEOUT_S)
    print('A and then B initialized with the same transactional.id')

    zombie.begin_transaction()
    produce_allowing_fatal(zombie, topic, labelled('zombie-idle', 3))
    expect_fenced(lambda: zombie.commit_transaction(CLIENT_TIMEOUT_S),
                  'idle A commit_transaction')

    fresh.begin_transaction()
    produce_values(fresh, topic, 0, labelled('fresh', 3))
    flush(fresh)
    fresh.commit_transaction(CLIENT_TIMEOUT_S)
    expect_view(args.bootstrap, topic, 0, 'read_uncommitted', labelled('fresh', 3, 0), 4)
    expect_view(args.bootstrap, topic, 0, 'read_committed', labelled('fresh', 3, 0), 4)


def main():
    arguments = parser(__doc__)
    arguments.add_argument('--topic', required=True)
    args = arguments.parse_args()
    start_watchdog()
    open_transaction_zombie(args)
    idle_zombie(args)
    print('zombies fenced; only the newest producer committed')


if __name__ == '__main__':
    main()
