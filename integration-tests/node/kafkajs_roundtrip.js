'use strict';
// kafkajs 2.2 round trip: admin creates a 3-partition topic; the default producer (acks -1)
// sends --count messages with keys, values, headers and explicit timestamps; a group consumer
// (subscribe fromBeginning, eachMessage, autoCommit) receives every one exactly once, in order
// per partition, intact; after it leaves, the committed offsets equal the end offsets, and a
// second consumer in the same group receives nothing more.

const {
  check, collect, makeConsumer, makeKafka, makeProducer, parseArgs, runMain, sleep,
  verifyMessage, waitFor, expectedRecord,
} = require('./common');

const PREFIX = 'roundtrip';

async function main() {
  const args = parseArgs({ topic: 'kafkajs-roundtrip', group: 'kafkajs-roundtrip-group', count: '300' });
  const count = Number(args.count);
  const { topic, group } = args;
  const kafka = makeKafka(args.bootstrap, 'kafkajs-roundtrip');

  const admin = kafka.admin();
  await admin.connect();
  const created = await admin.createTopics({
    topics: [{ topic, numPartitions: 3, replicationFactor: 1 }],
    waitForLeaders: true,
  });
  check(created === true, `createTopics returned ${created}, expected true (a new topic)`);

  // Produce in several send() calls so each partition gets more than one batch.
  const producer = makeProducer(kafka);
  await producer.connect();
  const baseOffsets = new Map(); // partition -> base offsets acknowledged, in send order
  const chunk = 50;
  for (let start = 0; start < count; start += chunk) {
    const messages = [];
    for (let index = start; index < Math.min(count, start + chunk); index += 1) {
      messages.push(expectedRecord(index, PREFIX));
    }
    const metadata = await producer.send({ topic, messages });
    for (const entry of metadata) {
      check(entry.errorCode === 0, `produce to ${topic}/${entry.partition}: error ${entry.errorCode}`);
      const offsets = baseOffsets.get(entry.partition) || [];
      const base = Number(entry.baseOffset);
      check(offsets.length === 0 ? base === 0 : base > offsets[offsets.length - 1],
        `produce to ${topic}/${entry.partition}: base offset ${base} after ${offsets}`);
      baseOffsets.set(entry.partition, [...offsets, base]);
    }
  }
  await producer.disconnect();
  check(baseOffsets.size === 3, `messages landed in ${baseOffsets.size} partitions, expected 3`);

  // ListOffsets: the end offsets add up to what was sent.
  const acknowledged = new Map(); // partition -> end offset
  for (const { partition, high, low } of await admin.fetchTopicOffsets(topic)) {
    check(Number(low) === 0, `${topic}/${partition} starts at ${low}, expected 0`);
    acknowledged.set(partition, Number(high));
  }
  const total = [...acknowledged.values()].reduce((a, b) => a + b, 0);
  const sizes = JSON.stringify([...acknowledged.entries()].sort((a, b) => a[0] - b[0]));
  check(total === count, `end offsets ${sizes} add up to ${total}, expected ${count}`);
  console.log(`produced ${count} messages to ${topic}; [partition, end offset]: ${sizes}`);

  // First consumer: everything, exactly once.
  const consumer = makeConsumer(kafka, group);
  const first = await collect(consumer, topic);
  await waitFor(() => first.received.length >= count, 30000,
    `${count} messages (have ${first.received.length})`);
  await sleep(1500); // anything extra (a duplicate) would arrive now
  await consumer.disconnect(); // commits what it consumed, then leaves the group
  check(first.received.length === count,
    `first consumer received ${first.received.length} messages, expected ${count}`);
  const seen = new Set();
  const lastOffset = new Map();
  const lastIndex = new Map();
  for (const { topic: from, partition, message } of first.received) {
    check(from === topic, `message from topic ${from}`);
    const index = verifyMessage(from, partition, message, PREFIX);
    check(!seen.has(index), `message ${index} received twice`);
    seen.add(index);
    const offset = Number(message.offset);
    const previous = lastOffset.has(partition) ? lastOffset.get(partition) : -1;
    check(offset === previous + 1,
      `${topic}/${partition}: offset ${offset} after ${previous}, expected ${previous + 1}`);
    lastOffset.set(partition, offset);
    check(!lastIndex.has(partition) || lastIndex.get(partition) < index,
      `${topic}/${partition}: message ${index} after message ${lastIndex.get(partition)}: out of send order`);
    lastIndex.set(partition, index);
  }
  console.log(`first consumer received ${count} messages exactly once, in order per partition`);

  // The group's committed offsets are the end offsets.
  const committed = await admin.fetchOffsets({ groupId: group, topics: [topic] });
  check(committed.length === 1 && committed[0].topic === topic,
    `fetchOffsets returned ${JSON.stringify(committed)}`);
  for (const { partition, offset } of committed[0].partitions) {
    check(Number(offset) === (acknowledged.get(partition) || 0),
      `committed offset of ${topic}/${partition} is ${offset}, expected ${acknowledged.get(partition)}`);
  }
  console.log(`committed offsets: ${JSON.stringify(committed[0].partitions.map((p) => [p.partition, p.offset]))}`);

  // Second consumer in the same group: resumes at the committed offsets, so nothing arrives.
  const again = makeConsumer(kafka, group);
  const second = await collect(again, topic);
  await waitFor(second.joined, 20000, 'the second consumer to join the group');
  await sleep(3000);
  await again.disconnect();
  check(second.received.length === 0, () => `second consumer received ${second.received.length} messages, ` +
    `first at ${second.received[0].partition}@${second.received[0].message.offset}; expected none`);
  console.log('second consumer in the same group received nothing: it resumed from the committed offsets');
  await admin.disconnect();
}

runMain(main);
