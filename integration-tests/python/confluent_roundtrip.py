"""confluent-kafka (librdkafka): produce with the given acks, compression and idempotence to
partition 0 of a new topic, then assign() from the beginning and read every message back.

With acks=0 the broker sends no Produce response at all; the producer must still finish
(librdkafka counts such messages delivered once sent) and the messages must be stored.
"""

import time

from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from common import (DeliveryReports, Statistics, check, check_confluent_message,
                    confluent_consumer, confluent_producer, consume, create_topic,
                    expect_no_more, expected_record, flush_all, parser)


def produce(args):
    settings = {'acks': args.acks, 'compression.type': args.compression, 'linger.ms': 20}
    statistics = Statistics()
    if args.idempotent:
        settings.update({'enable.idempotence': True, 'statistics.interval.ms': 100,
                         'stats_cb': statistics.callback})
    producer = confluent_producer(args.bootstrap, settings)
    reports = DeliveryReports()
    for index in range(args.count):
        key, value, headers, timestamp_ms = expected_record(index)
        producer.produce(args.topic, value=value, key=key, partition=0, headers=headers,
                         timestamp=timestamp_ms, on_delivery=reports.callback(index))
        producer.poll(0)
    flush_all(producer, reports, args.count)
    if args.acks != '0':
        offsets = [reports.delivered[index] for index in range(args.count)]
        check(offsets == [(0, offset) for offset in range(args.count)],
              f'acknowledged (partition, offset) {offsets[:5]}... not (0, 0), (0, 1), ...')
    if args.idempotent:
        check_idempotent_state(producer, statistics)
    print(f'produced {args.count} messages: acks={args.acks} compression={args.compression} '
          f'idempotent={args.idempotent}')


def check_idempotent_state(producer, statistics):
    """The producer really got a producer id (InitProducerId), per librdkafka's statistics."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        producer.poll(0.2)
        eos = (statistics.latest or {}).get('eos', {})
        if eos.get('idemp_state') == 'Assigned' and eos.get('producer_id', -1) >= 0:
            print(f"idempotent producer id {eos['producer_id']} epoch {eos['producer_epoch']}")
            return
    check(False, f'no producer id assigned; eos statistics: {(statistics.latest or {}).get("eos")}')


def read_back(args):
    consumer = confluent_consumer(args.bootstrap, args.topic)
    consumer.assign([TopicPartition(args.topic, 0, OFFSET_BEGINNING)])
    messages = consume(consumer, args.count)
    for position, message in enumerate(messages):
        check(message.offset() == position,
              f'message {position} has offset {message.offset()}, expected {position}')
        check_confluent_message(message, position)
    expect_no_more(consumer)
    consumer.close()
    print(f'consumed {args.count} messages from the beginning, in order, intact')


def main():
    arguments = parser(__doc__)
    arguments.add_argument('--topic', required=True)
    arguments.add_argument('--count', type=int, default=500)
    arguments.add_argument('--acks', choices=['0', '1', 'all'], default='all')
    arguments.add_argument('--compression', default='none',
                           choices=['none', 'gzip', 'snappy', 'lz4', 'zstd'])
    arguments.add_argument('--idempotent', action='store_true')
    args = arguments.parse_args()
    create_topic(args.bootstrap, args.topic, 1)
    produce(args)
    read_back(args)


if __name__ == '__main__':
    main()
