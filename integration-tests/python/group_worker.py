"""One consumer-group member in its own process, for the group orchestrators.

It subscribes to --topic in --group with kafka-python 3.0 (--client kafka-python) or
confluent-kafka (--client confluent) and reports what happens as JSON lines on stdout, one
event per line, each with `t` = time.monotonic() (the clock is shared by every process on
the machine, so the orchestrator can compare times):

  started                          the client object exists
  assigned   partitions            kafka-python: the whole new assignment (eager protocol);
                                   confluent: the partitions added (incremental with
                                   cooperative-sticky, the whole assignment otherwise)
  revoked    partitions            partitions given up
  lost       partitions            confluent on_lost: partitions taken away without a revoke
  generation generation, member_id kafka-python: the member's generation changed
  consumed   records [[p, o, key]] see below
  commit_failed error              a commit was rejected (a rebalance got in between)
  closed                           close() returned; the process exits 0 next

kafka-python reports records only after their offsets were committed synchronously, so a
record reported once is never delivered again to anyone: the union of reports must hold every
produced message exactly once. If the commit fails, the batch is not reported and the member
seeks back to its start, so its records come back to whoever owns the partition next. confluent reports records as they arrive and
commits after each batch, so a partition that moves may repeat its uncommitted tail.

SIGTERM makes the worker leave its poll loop and close() the consumer (a dynamic member sends
LeaveGroup; a static one does not). SIGKILL is the crash the orchestrator uses.
"""

import json
import logging
import signal
import sys
import time

from common import CLIENT_TIMEOUT_S, check, parser

# How long one poll waits, so SIGTERM is noticed quickly.
POLL_TIMEOUT_S = 0.2

stopping = False


def on_sigterm(_signum, _frame):
    global stopping
    stopping = True


def emit(event, **fields):
    fields.update({'event': event, 't': time.monotonic()})
    sys.stdout.write(json.dumps(fields) + '\n')
    sys.stdout.flush()


def record_key(key):
    return None if key is None else key.decode(errors='replace')


# --- kafka-python -------------------------------------------------------------------------

def run_kafka_python(args):
    from kafka import ConsumerRebalanceListener, KafkaConsumer, OffsetAndMetadata
    from kafka.coordinator.assignors.range import RangePartitionAssignor
    from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
    from kafka.errors import CommitFailedError, KafkaError

    assignors = {'range': RangePartitionAssignor, 'roundrobin': RoundRobinPartitionAssignor}
    consumer = KafkaConsumer(
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        client_id=args.client_id,
        group_instance_id=args.instance_id,
        auto_offset_reset='earliest',
        enable_auto_commit=False,
        session_timeout_ms=args.session_timeout_ms,
        heartbeat_interval_ms=args.heartbeat_interval_ms,
        max_poll_interval_ms=args.max_poll_interval_ms,
        partition_assignment_strategy=[assignors[args.assignor]],
        request_timeout_ms=CLIENT_TIMEOUT_S * 1000,
        max_poll_records=100,
    )

    # The callbacks run on kafka-python's event loop: they emit and touch nothing else.
    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):
            emit('revoked', partitions=sorted(tp.partition for tp in revoked))

        def on_partitions_assigned(self, assigned):
            emit('assigned', partitions=sorted(tp.partition for tp in assigned))

    # Know the topic's partitions before joining. Otherwise a member that becomes the leader
    # at once assigns nothing ("No partition metadata"), rejoins when the metadata arrives,
    # and kafka-python 3.0.11 was seen to hang for good in that quick second rebalance (its
    # main thread waiting for a FindCoordinator it never sends), whatever the broker answered.
    check(consumer.partitions_for_topic(args.topic), f'no partitions for {args.topic}')
    consumer.subscribe([args.topic], listener=Listener())
    emit('started')
    generation = None
    while not stopping:
        batches = consumer.poll(timeout_ms=int(POLL_TIMEOUT_S * 1000))
        current = current_generation(consumer)
        if current.generation_id != generation:
            generation = current.generation_id
            emit('generation', generation=generation, member_id=current.member_id)
        if not batches:
            continue
        offsets = {tp: OffsetAndMetadata(records[-1].offset + 1, args.commit_metadata, -1)
                   for tp, records in batches.items()}
        try:
            consumer.commit(offsets, timeout_ms=CLIENT_TIMEOUT_S * 1000)
        except (CommitFailedError, KafkaError) as error:
            emit('commit_failed', error=repr(error))
            rewind(consumer, batches)
            continue
        emit('consumed', records=[[tp.partition, record.offset, record_key(record.key)]
                                  for tp, records in batches.items() for record in records])
    consumer.close()
    emit('closed')


def current_generation(consumer):
    """The member's current Generation (generation_id, member_id), -1 before it joined.

    Read from the coordinator's attribute rather than through KafkaConsumer.group_metadata(),
    which takes the coordinator's lock from this thread while kafka-python's event loop may be
    in the middle of a rebalance; the attribute read is a single reference load.
    """
    return consumer._coordinator._generation


def rewind(consumer, batches):
    """Seeks back to the start of an uncommitted batch, so it is delivered (and reported)
    again: kafka-python keeps the position of a partition it still owns after a rebalance.
    A partition already taken away needs nothing: its next owner starts at the committed
    offset."""
    for tp, records in batches.items():
        try:
            consumer.seek(tp, records[0].offset)
        except ValueError:
            pass


# --- confluent-kafka ----------------------------------------------------------------------

def run_confluent(args):
    from confluent_kafka import Consumer, KafkaError, KafkaException

    from common import confluent_config

    settings = {
        'group.id': args.group,
        'client.id': args.client_id,
        'auto.offset.reset': 'earliest',
        'enable.auto.commit': False,
        'session.timeout.ms': args.session_timeout_ms,
        'heartbeat.interval.ms': args.heartbeat_interval_ms,
        'max.poll.interval.ms': args.max_poll_interval_ms,
        'partition.assignment.strategy': args.assignor,
    }
    if args.instance_id:
        settings['group.instance.id'] = args.instance_id
    consumer = Consumer(confluent_config(args.bootstrap, settings))

    def on_assign(_consumer, partitions):
        emit('assigned', partitions=sorted(tp.partition for tp in partitions))

    def on_revoke(inner, partitions):
        # Commit what was consumed before giving the partitions up, as applications should.
        try:
            inner.commit(asynchronous=False)
        except KafkaException as error:
            emit('commit_failed', error=str(error))
        emit('revoked', partitions=sorted(tp.partition for tp in partitions))

    def on_lost(_consumer, partitions):
        emit('lost', partitions=sorted(tp.partition for tp in partitions))

    consumer.subscribe([args.topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
    emit('started')
    while not stopping:
        messages = consumer.consume(num_messages=100, timeout=POLL_TIMEOUT_S)
        records = []
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    emit('consumer_error', error=str(error), fatal=error.fatal())
                continue
            records.append([message.partition(), message.offset(), record_key(message.key())])
        if not records:
            continue
        emit('consumed', records=records)
        try:
            consumer.commit(asynchronous=False)
        except KafkaException as error:
            emit('commit_failed', error=str(error))
    consumer.close()
    emit('closed')


def main():
    arguments = parser(__doc__)
    arguments.add_argument('--client', required=True, choices=['kafka-python', 'confluent'])
    arguments.add_argument('--topic', required=True)
    arguments.add_argument('--group', required=True)
    arguments.add_argument('--client-id', required=True)
    arguments.add_argument('--instance-id', default=None, help='group.instance.id (static)')
    arguments.add_argument('--assignor', default=None,
                           help="kafka-python: range or roundrobin; confluent: librdkafka's "
                                'partition.assignment.strategy')
    arguments.add_argument('--session-timeout-ms', type=int, default=6000)
    arguments.add_argument('--heartbeat-interval-ms', type=int, default=1000)
    arguments.add_argument('--max-poll-interval-ms', type=int, default=20000)
    arguments.add_argument('--commit-metadata', default='', help='kafka-python commit metadata')
    args = arguments.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format=f'{args.client_id} %(levelname)s %(name)s: %(message)s')
    signal.signal(signal.SIGTERM, on_sigterm)
    if args.client == 'kafka-python':
        args.assignor = args.assignor or 'range'
        run_kafka_python(args)
    else:
        args.assignor = args.assignor or 'range'
        run_confluent(args)


if __name__ == '__main__':
    main()
