"""SCRAM users over the wire with confluent-kafka's AdminClient; --mode picks the call.

upsert:   AlterUserScramCredentials adds or replaces --user's --mechanism credential with
          --new-password (4096 iterations); with --expect-error NAME it must fail with that
          Kafka error (e.g. CLUSTER_AUTHORIZATION_FAILED) instead.
delete:   AlterUserScramCredentials deletes --user's --mechanism credential.
describe: DescribeUserScramCredentials for --user must list exactly --mechanism.
connect:  a plain Metadata request with the caller's credentials must succeed.
"""

from confluent_kafka import KafkaException
from confluent_kafka.admin import (AdminClient, ScramCredentialInfo, ScramMechanism,
                                   UserScramCredentialDeletion, UserScramCredentialUpsertion)

from common import CLIENT_TIMEOUT_S, check, confluent_config, fail
from security_common import Security, security_parser

ITERATIONS = 4096


def mechanism(name):
    return ScramMechanism[name.replace('-', '_')]


def alter(admin, alteration):
    futures = admin.alter_user_scram_credentials([alteration],
                                                 request_timeout=CLIENT_TIMEOUT_S)
    for future in futures.values():
        future.result(timeout=CLIENT_TIMEOUT_S)


def main():
    arguments = security_parser(__doc__)
    arguments.add_argument('--mode', required=True,
                           choices=['upsert', 'delete', 'describe', 'connect'])
    arguments.add_argument('--user')
    arguments.add_argument('--mechanism', default='SCRAM-SHA-256')
    arguments.add_argument('--new-password')
    arguments.add_argument('--expect-error')
    args = arguments.parse_args()
    security = Security(args)
    admin = AdminClient(confluent_config(args.bootstrap, security.confluent()))
    if args.mode == 'upsert':
        upsertion = UserScramCredentialUpsertion(
            args.user, ScramCredentialInfo(mechanism(args.mechanism), ITERATIONS),
            args.new_password.encode())
        try:
            alter(admin, upsertion)
        except KafkaException as exception:
            error = exception.args[0]
            check(args.expect_error is not None and error.name() == args.expect_error,
                  f'{security.describe()} upserting {args.user}: {error.name()} '
                  f'({error.str()}), expected {args.expect_error or "success"}')
            print(f'upserting {args.user} refused: {error.name()}')
            return
        check(args.expect_error is None,
              f'{security.describe()} upserted {args.user}, expected {args.expect_error}')
        print(f'upserted {args.mechanism} credentials for {args.user}')
    elif args.mode == 'delete':
        alter(admin, UserScramCredentialDeletion(args.user, mechanism(args.mechanism)))
        print(f'deleted {args.mechanism} credentials for {args.user}')
    elif args.mode == 'describe':
        described = admin.describe_user_scram_credentials(
            [args.user], request_timeout=CLIENT_TIMEOUT_S)[args.user].result(
                timeout=CLIENT_TIMEOUT_S)
        infos = [(info.mechanism.name, info.iterations)
                 for info in described.scram_credential_infos]
        expected = [(args.mechanism.replace('-', '_'), ITERATIONS)]
        check(infos == expected, f'{args.user} has credentials {infos}, expected {expected}')
        print(f'{args.user} has {args.mechanism} credentials with {ITERATIONS} iterations')
    else:
        try:
            metadata = admin.list_topics(timeout=10)
        except KafkaException as exception:
            fail(f'{security.describe()} cannot get metadata: {exception}')
        print(f'{security.describe()} connected to broker {sorted(metadata.brokers)}')


if __name__ == '__main__':
    main()
