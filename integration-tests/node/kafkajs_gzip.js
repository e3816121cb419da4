'use strict';
// kafkajs 2.2 gzip: the producer sends --count messages with CompressionTypes.GZIP to a
// 1-partition topic, and a group consumer reads every one back exactly once, in order, intact.
// (The Rust test then checks the stored batch really is gzip.)

const { CompressionTypes } = require('kafkajs');
const {
  check, collect, expectedRecord, makeConsumer, makeKafka, makeProducer, parseArgs, runMain,
  sleep, verifyMessage, waitFor,
} = require('./common');

const PREFIX = 'gzip';

async function main() {
  const args = parseArgs({ topic: 'kafkajs-gzip', group: 'kafkajs-gzip-group', count: '200' });
  const { topic, group } = args;
  const count = Number(args.count);
  const kafka = makeKafka(args.bootstrap, 'kafkajs-gzip');
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });

  const producer = makeProducer(kafka);
  await producer.connect();
  const messages = [];
  for (let index = 0; index < count; index += 1) messages.push(expectedRecord(index, PREFIX));
  const [ack] = await producer.send({ topic, compression: CompressionTypes.GZIP, messages });
  check(ack.errorCode === 0 && Number(ack.baseOffset) === 0, () => `produce ack: ${JSON.stringify(ack)}`);
  await producer.disconnect();
  const [{ high }] = await admin.fetchTopicOffsets(topic);
  check(Number(high) === count, `${topic}/0 ends at ${high} after one gzip batch of ${count}`);
  console.log(`produced ${count} messages to ${topic} in one gzip batch`);

  const consumer = makeConsumer(kafka, group);
  const run = await collect(consumer, topic);
  await waitFor(() => run.received.length >= count, 30000, `${count} messages (have ${run.received.length})`);
  await sleep(1000);
  await consumer.disconnect();
  check(run.received.length === count, `received ${run.received.length} messages, expected ${count}`);
  run.received.forEach(({ partition, message }, position) => {
    const index = verifyMessage(topic, partition, message, PREFIX);
    check(index === position && Number(message.offset) === position,
      `position ${position}: message ${index} at offset ${message.offset}`);
  });
  console.log(`consumed ${count} gzip messages, in order and intact`);
  await admin.disconnect();
}

runMain(main);
