// Package kafka holds Kafka client actors: a producer, a consumer and a
// workload driver that runs them and records a Jepsen-style history
// (package checkers/history).
//
// The actors are written against the seams (sim.Env), so the same code runs
// in the simulated world and over real sockets. They speak Kafka's wire
// protocol with franz-go's kmsg types over sim.FrameLength32 connections:
// one connection per broker, an ApiVersions handshake, and per API key the
// lower of our highest version and the broker's (ourVersions). Record
// batches are RecordBatch v2, built and read with the broker's own package
// (broker/record): CRC-32C, and gzip, snappy (xerial framing, as the Java
// client writes), lz4 (frames) or zstd compression.
//
// The producer batches per partition (linger, batch and request byte
// bounds), partitions as the Java client does (murmur2 of the key; KIP-480
// sticky partitions without a key), and is idempotent by default with
// acks=all: a producer id and epoch from InitProducerId, per-partition
// sequence numbers, up to five batches in flight per partition, retries
// that resend the same bytes, and a local epoch bump (KIP-360) when the
// sequence breaks. Every record it accepts ends once: ok with its offset,
// fail when it definitely was not written, info when it may have been
// (produceClasses says which error is which, and why).
//
// The consumer has an explicit assignment (no group), seeks, resets with
// ListOffsets per its policy, and polls with one Fetch per leader; it skips
// control batches and compacted gaps, stops quietly at a batch a fetch cut
// short, and counts a batch that fails its CRC or structure as corrupt
// (ConsumerStats.CorruptBatches).
//
// Everything is bounded: buffered bytes, requests in flight, queued calls,
// retries, the metadata refresh rate, decompressed batch sizes.
package kafka
