"""kafka-python 3.0 with compression_type=--codec: produce to partition 0, read it back.

The messages go to partition 0 explicitly so the Rust test can fetch that partition raw and
check the stored batch really carries the codec.
"""

import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka import codec as kafka_codec

from common import CLIENT_TIMEOUT_S, check, expected_record, index_of_key, parser

# kafka-python can only compress with these if their libraries import; the venv pins them.
CODEC_AVAILABLE = {
    'none': lambda: True,
    'gzip': kafka_codec.has_gzip,
    'snappy': kafka_codec.has_snappy,
    'lz4': kafka_codec.has_lz4,
    'zstd': kafka_codec.has_zstd,
}


def produce(bootstrap, topic, codec, count):
    check(CODEC_AVAILABLE[codec](), f'kafka-python cannot use {codec}: its library is missing')
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        compression_type=None if codec == 'none' else codec,
        # Let records gather so batches hold many of them and compress well.
        linger_ms=50,
        max_block_ms=CLIENT_TIMEOUT_S * 1000,
        request_timeout_ms=15000,
        delivery_timeout_ms=CLIENT_TIMEOUT_S * 1000,
    )
    futures = []
    for index in range(count):
        key, value, headers, timestamp_ms = expected_record(index, codec)
        futures.append(producer.send(topic, key=key, value=value, headers=headers,
                                     partition=0, timestamp_ms=timestamp_ms))
    producer.flush(timeout=CLIENT_TIMEOUT_S)
    offsets = [future.get(timeout=CLIENT_TIMEOUT_S).offset for future in futures]
    check(offsets == list(range(count)), f'acknowledged offsets {offsets[:10]}... not 0, 1, ...')
    producer.close(timeout=10)
    print(f'produced {count} {codec} messages to {topic}/0')


def consume(bootstrap, topic, codec, count):
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    partition = TopicPartition(topic, 0)
    consumer.assign([partition])
    consumer.seek_to_beginning(partition)
    received = []
    deadline = time.monotonic() + CLIENT_TIMEOUT_S
    while len(received) < count and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            received.extend(records)
    consumer.close()
    check(len(received) == count, f'consumed {len(received)} of {count} within {CLIENT_TIMEOUT_S}s')
    for position, message in enumerate(received):
        index = index_of_key(message.key)
        key, value, headers, timestamp_ms = expected_record(index, codec)
        where = f'message at offset {message.offset}'
        check(index == position and message.offset == position,
              f'{where} holds message {index}, expected {position}')
        check(message.value == value, f'{where}: value {message.value!r}, expected {value!r}')
        check(message.headers == headers, f'{where}: headers {message.headers!r}')
        check(message.timestamp == timestamp_ms, f'{where}: timestamp {message.timestamp}')
    print(f'consumed {count} {codec} messages in order, intact')


def main():
    arguments = parser(__doc__)
    arguments.add_argument('--topic', required=True)
    arguments.add_argument('--codec', required=True, choices=sorted(CODEC_AVAILABLE))
    arguments.add_argument('--count', type=int, default=300)
    args = arguments.parse_args()
    produce(args.bootstrap, args.topic, args.codec, args.count)
    consume(args.bootstrap, args.topic, args.codec, args.count)


if __name__ == '__main__':
    main()
