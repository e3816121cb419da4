"""confluent-kafka's AdminClient as the test's administrator; --mode picks the call.

create-topics: CreateTopics for --topics a,b,c (one partition each).
create-acls:   CreateAcls for --acls, a JSON list of {permission, principal, resource,
               pattern, name, operation} (resource TOPIC, GROUP, CLUSTER or
               TRANSACTIONAL_ID; pattern LITERAL or PREFIXED; host is always *).
delete-acls:   DeleteAcls with each of --acls as an exact filter.
describe-acls: DescribeAcls for everything; prints one binding per line.
"""

import json

from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation,
                                   AclPermissionType, AdminClient, NewTopic, ResourcePatternType,
                                   ResourceType)

from common import CLIENT_TIMEOUT_S, check, confluent_config
from security_common import Security, security_parser


def binding(spec, filter_type=AclBinding):
    """An AclBinding (or AclBindingFilter) from one JSON spec."""
    # Kafka's Cluster resource is confluent-kafka's BROKER, always named kafka-cluster.
    if spec['resource'] == 'CLUSTER':
        resource, name = ResourceType.BROKER, 'kafka-cluster'
    else:
        resource, name = ResourceType[spec['resource']], spec['name']
    return filter_type(resource, name, ResourcePatternType[spec.get('pattern', 'LITERAL')],
                       spec['principal'], '*', AclOperation[spec['operation']],
                       AclPermissionType[spec['permission']])


def describe(acl):
    return (f'{acl.permission_type.name} {acl.principal} {acl.operation.name} '
            f'{acl.restype.name}:{acl.resource_pattern_type.name}:{acl.name}')


def main():
    arguments = security_parser(__doc__)
    arguments.add_argument('--mode', required=True,
                           choices=['create-topics', 'create-acls', 'delete-acls',
                                    'describe-acls'])
    arguments.add_argument('--topics', default='')
    arguments.add_argument('--acls', default='[]')
    args = arguments.parse_args()
    admin = AdminClient(confluent_config(args.bootstrap, Security(args).confluent()))
    specs = json.loads(args.acls)
    if args.mode == 'create-topics':
        topics = [NewTopic(name, num_partitions=1, replication_factor=1)
                  for name in args.topics.split(',')]
        for name, future in admin.create_topics(topics,
                                                request_timeout=CLIENT_TIMEOUT_S).items():
            future.result(timeout=CLIENT_TIMEOUT_S)
            print(f'created topic {name}')
    elif args.mode == 'create-acls':
        futures = admin.create_acls([binding(spec) for spec in specs],
                                    request_timeout=CLIENT_TIMEOUT_S)
        for acl, future in futures.items():
            future.result(timeout=CLIENT_TIMEOUT_S)
            print(f'created ACL {describe(acl)}')
    elif args.mode == 'delete-acls':
        futures = admin.delete_acls([binding(spec, AclBindingFilter) for spec in specs],
                                    request_timeout=CLIENT_TIMEOUT_S)
        for acl_filter, future in futures.items():
            deleted = future.result(timeout=CLIENT_TIMEOUT_S)
            check(len(deleted) == 1, f'{describe(acl_filter)} deleted {deleted}')
            print(f'deleted ACL {describe(deleted[0])}')
    else:
        everything = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None,
                                      None, AclOperation.ANY, AclPermissionType.ANY)
        acls = admin.describe_acls(everything, request_timeout=CLIENT_TIMEOUT_S)
        for acl in sorted(acls.result(timeout=CLIENT_TIMEOUT_S), key=describe):
            print(f'ACL {describe(acl)}')


if __name__ == '__main__':
    main()
