'use strict';
// kafkajs 2.2 admin client: createTopics, listTopics, fetchTopicMetadata, createPartitions,
// describeConfigs (retention.ms of a topic), listGroups / describeGroups while a consumer group
// is running and after it left, fetchOffsets for that group, then deleteTopics.

const { ConfigResourceTypes } = require('kafkajs');
const {
  check, collect, expectedRecord, makeConsumer, makeKafka, makeProducer, parseArgs, runMain,
  sleep, waitFor,
} = require('./common');

const PREFIX = 'admin';

async function partitionCount(admin, topic) {
  const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
  check(topics.length === 1 && topics[0].name === topic,
    () => `fetchTopicMetadata(${topic}) returned ${JSON.stringify(topics)}`);
  for (const partition of topics[0].partitions) {
    check(partition.partitionErrorCode === 0 && partition.leader >= 0,
      () => `${topic}/${partition.partitionId}: ${JSON.stringify(partition)}`);
  }
  return topics[0].partitions.length;
}

async function main() {
  const args = parseArgs({ topic: 'kafkajs-admin', group: 'kafkajs-admin-group', count: '30' });
  const { topic, group } = args;
  const count = Number(args.count);
  const kafka = makeKafka(args.bootstrap, 'kafkajs-admin');
  const admin = kafka.admin();
  await admin.connect();

  // Topics: create, list, metadata, grow.
  const created = await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
  check(created === true, `createTopics returned ${created}, expected true (a new topic)`);
  const listed = await admin.listTopics();
  check(listed.includes(topic), `listTopics ${JSON.stringify(listed)} lacks ${topic}`);
  check((await partitionCount(admin, topic)) === 1, `${topic} does not start with 1 partition`);
  await admin.createPartitions({ topicPartitions: [{ topic, count: 3 }] });
  const grown = await partitionCount(admin, topic);
  check(grown === 3, `after createPartitions(count: 3) ${topic} has ${grown} partitions`);
  console.log(`created ${topic}, listed it, grew it from 1 to 3 partitions`);

  // Configs: retention.ms of the topic.
  const described = await admin.describeConfigs({
    resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['retention.ms'] }],
    includeSynonyms: false,
  });
  check(described.resources.length === 1, () => `describeConfigs: ${JSON.stringify(described)}`);
  const resource = described.resources[0];
  check(resource.errorCode === 0 && resource.resourceType === ConfigResourceTypes.TOPIC
    && resource.resourceName === topic, () => `describeConfigs resource: ${JSON.stringify(resource)}`);
  const retention = resource.configEntries.find((entry) => entry.configName === 'retention.ms');
  check(retention !== undefined, () => `describeConfigs lacks retention.ms: ${JSON.stringify(resource)}`);
  check(/^-?\d+$/.test(retention.configValue),
    () => `retention.ms is not a number: ${JSON.stringify(retention)}`);
  console.log(`describeConfigs: retention.ms = ${retention.configValue}`);

  // A consumer group: produce, consume everything with autoCommit, inspect it while it runs.
  const producer = makeProducer(kafka);
  await producer.connect();
  const messages = [];
  for (let index = 0; index < count; index += 1) messages.push(expectedRecord(index, PREFIX));
  await producer.send({ topic, messages });
  await producer.disconnect();
  const ends = new Map();
  for (const { partition, high } of await admin.fetchTopicOffsets(topic)) ends.set(partition, Number(high));

  const consumer = makeConsumer(kafka, group);
  const run = await collect(consumer, topic);
  await waitFor(() => run.received.length >= count, 30000, `${count} messages (have ${run.received.length})`);
  const { groups } = await admin.listGroups();
  const mine = groups.find((g) => g.groupId === group);
  check(mine !== undefined, () => `listGroups ${JSON.stringify(groups)} lacks ${group}`);
  check(mine.protocolType === 'consumer', () => `listGroups entry: ${JSON.stringify(mine)}`);
  let { groups: [live] } = await admin.describeGroups([group]);
  check(live.errorCode === 0 && live.groupId === group && live.state === 'Stable'
    && live.protocolType === 'consumer' && live.protocol === 'RoundRobinAssigner'
    && live.members.length === 1,
  () => `describeGroups while running: ${JSON.stringify(live)}`);
  const member = live.members[0];
  check(member.clientId === 'kafkajs-admin' && member.memberAssignment.length > 0,
    () => `describeGroups member: ${JSON.stringify(member)}`);
  console.log(`listGroups/describeGroups while running: ${live.state}, protocol ${live.protocol}, ` +
    `member ${member.memberId}`);
  await sleep(500);
  await consumer.disconnect();
  check(run.received.length === count, `the group consumed ${run.received.length} messages, expected ${count}`);

  ({ groups: [live] } = await admin.describeGroups([group]));
  check(live.errorCode === 0 && live.state === 'Empty' && live.members.length === 0,
    () => `describeGroups after the consumer left: ${JSON.stringify(live)}`);

  // Offsets the group committed.
  const offsets = await admin.fetchOffsets({ groupId: group, topics: [topic] });
  check(offsets.length === 1 && offsets[0].topic === topic && offsets[0].partitions.length === 3,
    () => `fetchOffsets: ${JSON.stringify(offsets)}`);
  for (const { partition, offset } of offsets[0].partitions) {
    check(Number(offset) === ends.get(partition),
      `committed offset of ${topic}/${partition} is ${offset}, expected ${ends.get(partition)}`);
  }
  console.log(`fetchOffsets: ${JSON.stringify(offsets[0].partitions.map((p) => [p.partition, p.offset]))}`);

  // Delete the topic.
  await admin.deleteTopics({ topics: [topic] });
  const after = await admin.listTopics();
  check(!after.includes(topic), `listTopics after deleteTopics still has ${topic}: ${JSON.stringify(after)}`);
  console.log(`deleted ${topic}`);
  await admin.disconnect();
}

runMain(main);
