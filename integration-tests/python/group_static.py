"""Static membership (KIP-345) with kafka-python 3.0: a member with group.instance.id restarts
within its session timeout and the group does not rebalance.

Two static members (static-a, static-b) share a 4-partition topic. static-a's process is
closed (a static member sends no LeaveGroup) and a new process with the same
group.instance.id starts at once. It must get the same partitions back in the same
generation, the other member must see no revoke or assign and stay in that generation, and
consumption resumes from the committed offsets: every message is consumed exactly once.
Then static-b restarts the same way, so both a restarting group leader and a restarting
follower are covered (with Kafka, the rejoining leader is answered with the old leader id
and no member list, so it does not redo the assignment).
"""

import time

from common import check, create_topic, parser
from group_common import (Member, consumed_union, index_of_message_key, produce_indexed,
                          quiet, settled, wait_until)
from group_exactly_once import check_exactly_once

PARTITIONS = 4
SESSION_TIMEOUT_MS = 10000
REBALANCE_TIMEOUT_S = 30
# How long the group must go without rebalance events before the restarts (see quiet()).
QUIET_S = 2.0
# kafka-python's generation before a member has joined.
NO_GENERATION = -1


def start_member(args, name, instance_id):
    return Member(args.bootstrap, name, 'kafka-python', args.topic, args.group,
                  ['--instance-id', instance_id,
                   '--session-timeout-ms', str(SESSION_TIMEOUT_MS),
                   '--heartbeat-interval-ms', '1000'])


def joined_generation(member):
    """A condition: the member reported a generation it joined (not -1)."""
    return lambda: member.generation() not in (None, NO_GENERATION)


def restart(args, current, instance_id, generation, everyone):
    """Closes the process of `instance_id` and starts a new one at once; checks it gets the
    same partitions in the same generation. Returns the new member."""
    old = current[instance_id]
    partitions = old.owned()
    old.stop()
    stopped_at = time.monotonic()
    new = start_member(args, f'{instance_id}-restarted', instance_id)
    current[instance_id] = new
    everyone.append(new)
    took = wait_until(lambda: new.owned() and joined_generation(new)(),
                      SESSION_TIMEOUT_MS / 1000, f'the restarted {instance_id} rejoining',
                      list(current.values()))
    check(time.monotonic() - stopped_at < SESSION_TIMEOUT_MS / 1000,
          'the restart took longer than the session timeout; the test proves nothing')
    check(new.owned() == partitions,
          f'restarted {instance_id} got {sorted(new.owned())}, it had {sorted(partitions)}')
    check(new.generation() == generation,
          f'restarted {instance_id} is in generation {new.generation()}, the group was in '
          f'{generation}: the restart caused a rebalance')
    print(f'{instance_id} restarted and got {sorted(partitions)} back in {took:.1f}s, '
          f'generation {generation}')
    return new


def rebalance_callbacks(member):
    return len(member.events('assigned')) + len(member.events('revoked'))


def main():
    arguments = parser(__doc__)
    arguments.add_argument('--topic', required=True)
    arguments.add_argument('--group', required=True)
    args = arguments.parse_args()
    create_topic(args.bootstrap, args.topic, PARTITIONS)
    produced = produce_indexed(args.bootstrap, args.topic, range(0, 40), PARTITIONS)
    current = {name: start_member(args, name, name) for name in ('static-a', 'static-b')}
    everyone = list(current.values())
    wait_until(settled(everyone, PARTITIONS, [2, 2]), REBALANCE_TIMEOUT_S,
               'assignment of 2 partitions to each static member', everyone)
    wait_until(lambda: len(consumed_union(everyone)) >= 40, REBALANCE_TIMEOUT_S,
               '40 messages consumed', everyone)
    first, other = current['static-a'], current['static-b']
    wait_until(lambda: (quiet(everyone, QUIET_S)() and joined_generation(first)()
                        and first.generation() == other.generation()),
               REBALANCE_TIMEOUT_S, f'both members in one generation for {QUIET_S}s', everyone)
    generation = first.generation()
    print(f'static-a owns {sorted(first.owned())}, static-b {sorted(other.owned())}, '
          f'generation {generation}')
    # One of the two is the group leader; restarting both covers a restarting leader and a
    # restarting follower whichever it is.
    for restarting, staying in (('static-a', 'static-b'), ('static-b', 'static-a')):
        callbacks = rebalance_callbacks(current[staying])
        restart(args, current, restarting, generation, everyone)
        next_index = len(produced)
        produced.update(produce_indexed(args.bootstrap, args.topic,
                                        range(next_index, next_index + 40), PARTITIONS))
        wait_until(lambda: len(consumed_union(everyone)) >= len(produced), REBALANCE_TIMEOUT_S,
                   f'{len(produced)} messages consumed', list(current.values()))
        check_exactly_once(everyone, produced)
        restarted = current[restarting]
        new_on_partitions = {partition for partition, offset, key, name in consumed_union(everyone)
                             if name == restarted.name and index_of_message_key(key) >= next_index}
        check(new_on_partitions == restarted.owned(),
              f'{restarted.name} consumed new messages on {sorted(new_on_partitions)}')
        check(rebalance_callbacks(current[staying]) == callbacks,
              f'{staying} saw a rebalance callback during the restart: '
              f'{current[staying].describe()}')
        check(current[staying].generation() == generation,
              f'{staying} moved to generation {current[staying].generation()} from {generation}')
        print(f'{len(produced)} messages consumed exactly once; {staying} saw no rebalance')
    for member in current.values():
        member.stop()


if __name__ == '__main__':
    main()
