"""kafka-python 3.0 over a secured listener; --mode picks what to prove.

roundtrip:    produce --count messages with the default (idempotent, acks=all) producer, consume
              them in group --group (subscribe), commit and read the committed offset back.
auth-failure: the credentials are wrong: the client must be refused with the broker's
              SaslAuthenticate error code 58 (kafka-python words it "[Error 58]
              SaslAuthenticationFailedError: SaslAuthenticationFailedError: <broker message>";
              a failure it detects itself reads "Failed to authenticate via SASL"). kafka-python
              3.0 retries a bootstrap that fails so until max_block_ms, then raises
              KafkaTimeoutError; the refusal itself is in its log.
"""

import logging
import re
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaTimeoutError, SaslAuthenticationFailedError

from common import CLIENT_TIMEOUT_S, check, fail
from security_common import Security, confluent_messages, security_parser


def produce(bootstrap, security, topic, count):
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        max_block_ms=CLIENT_TIMEOUT_S * 1000,
        request_timeout_ms=15000,
        delivery_timeout_ms=CLIENT_TIMEOUT_S * 1000,
        **security.kafka_python())
    futures = [producer.send(topic, key=key, value=value, partition=0)
               for key, value in confluent_messages(count, topic)]
    producer.flush(timeout=CLIENT_TIMEOUT_S)
    offsets = [future.get(timeout=CLIENT_TIMEOUT_S).offset for future in futures]
    check(offsets == list(range(offsets[0], offsets[0] + count)),
          f'acknowledged offsets {offsets[:5]}... are not consecutive')
    producer.close(timeout=10)
    print(f'produced {count} messages to {topic} over {security.describe()}')


def consume_in_group(bootstrap, security, topic, group, count):
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset='earliest',
        enable_auto_commit=False,
        session_timeout_ms=10000,
        heartbeat_interval_ms=1000,
        request_timeout_ms=20000,
        **security.kafka_python())
    consumer.subscribe([topic])
    received = []
    deadline = time.monotonic() + CLIENT_TIMEOUT_S
    while len(received) < count and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            received.extend((record.key, record.value) for record in records)
    check(sorted(received) == sorted(confluent_messages(count, topic)),
          f'group {group} consumed {len(received)} of {count} messages: {received[:3]}...')
    partition = TopicPartition(topic, 0)
    check(consumer.assignment() == {partition}, f'assignment {consumer.assignment()}')
    consumer.commit()
    committed = consumer.committed(partition)
    check(committed == count, f'OffsetFetch gives {committed}, expected {count}')
    consumer.close()
    print(f'group {group} consumed {count} messages and committed offset {count}')


class BootstrapFailures(logging.Handler):
    """Keeps the messages kafka-python logs when a bootstrap connection fails."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


BROKER_REFUSAL = '[Error 58] SaslAuthenticationFailedError: SaslAuthenticationFailedError: '


def auth_failure(bootstrap, security, topic):
    failures = BootstrapFailures()
    logging.getLogger('kafka.net.manager').addHandler(failures)
    try:
        producer = KafkaProducer(bootstrap_servers=bootstrap, max_block_ms=5000,
                                 request_timeout_ms=5000, **security.kafka_python())
        producer.send(topic, value=b'must not land').get(timeout=15)
    except SaslAuthenticationFailedError as error:
        check(str(error.args[0]).startswith('SaslAuthenticationFailedError: '),
              f'kafka-python refused by itself, not on the broker\'s error code 58: {error}')
        print(f'refused as expected: {error}')
        print(f"broker message: {str(error.args[0])[len('SaslAuthenticationFailedError: '):]}")
        return
    except KafkaTimeoutError as error:
        refusals = [message for message in failures.messages if BROKER_REFUSAL in message]
        check(refusals, f'bootstrap timed out ({error}) without the broker\'s error code 58; '
              f'kafka-python logged: {failures.messages}')
        message = refusals[0][refusals[0].index(BROKER_REFUSAL) + len(BROKER_REFUSAL):]
        # kafka-python appends its own jittered retry delay: " (backoff 0.05 secs)".
        message = re.sub(r' \(backoff [0-9.]+ secs\)$', '', message)
        print(f'refused as expected, {len(refusals)} bootstrap attempts, then {error}')
        print(f'broker message: {message}')
        return
    except Exception as error:  # noqa: BLE001 - any other failure is the wrong one
        fail(f'expected SaslAuthenticationFailedError, got {type(error).__name__}: {error}')
    fail(f'produced over {security.describe()} with wrong credentials')


def main():
    arguments = security_parser(__doc__)
    arguments.add_argument('--mode', required=True, choices=['roundtrip', 'auth-failure'])
    arguments.add_argument('--topic', default='secure-kafka-python')
    arguments.add_argument('--group', default='secure-kafka-python-group')
    arguments.add_argument('--count', type=int, default=20)
    args = arguments.parse_args()
    security = Security(args)
    if args.mode == 'roundtrip':
        produce(args.bootstrap, security, args.topic, args.count)
        consume_in_group(args.bootstrap, security, args.topic, args.group, args.count)
    else:
        auth_failure(args.bootstrap, security, args.topic)


if __name__ == '__main__':
    main()
