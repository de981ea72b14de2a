package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluice-sim/sluice/checkers"
	"github.com/sluice-sim/sluice/checkers/history"
)

func newCheckCommand() *cobra.Command {
	var (
		jsonOut    bool
		sendOrder  string
		timeout    time.Duration
		skipLinear bool
		unseenOK   bool
	)
	cmd := &cobra.Command{
		Use:   "check HISTORY",
		Short: "Judge a history file: Jepsen's Kafka anomalies and linearizability per partition",
		Long: `Read a history (JSON lines, one operation per line, as sim runs and real
workloads write them) and run the checkers on it: the Jepsen Kafka anomaly
set (inconsistent-offsets, duplicate, lost-write, unseen, G1a, poll-skip,
nonmonotonic-poll, nonmonotonic-send and the internal variants) and a
porcupine linearizability check of every partition's log.

The history format is Jepsen's, as JSON lines: every operation is an
"invoke" line and later a completion line of the same process, "ok", "fail"
(it definitely did not happen) or "info" (it may have happened: a timeout).
Fields: index (0, 1, 2, ... in file order), time (nanoseconds on one clock
for every process), process, type, f ("send", "poll", "assign" or
"commit"), record (a send's topic, partition, value and offset: -1 on
invoke, the offset the broker assigned on ok), records (what a poll's ok
returned), assign (the partitions an assign installs), group and
generation (a consumer group member's ops), offsets (what a commit
commits), reset (a commit moving offsets back on purpose), error. Values
must be unique. A history with group members also gets the "groups"
verdict (one owner per partition per generation, commits never backwards,
at least once across rebalances). A send
acknowledged at offset 0 and read back by a consumer:

  {"index":0,"time":1000000,"process":0,"type":"invoke","f":"send","record":{"topic":"t","partition":0,"value":"0-1","offset":-1}}
  {"index":1,"time":2000000,"process":0,"type":"ok","f":"send","record":{"topic":"t","partition":0,"value":"0-1","offset":0}}
  {"index":2,"time":3000000,"process":1,"type":"invoke","f":"assign","assign":[{"topic":"t","partition":0}]}
  {"index":3,"time":3000000,"process":1,"type":"ok","f":"assign","assign":[{"topic":"t","partition":0}]}
  {"index":4,"time":4000000,"process":1,"type":"invoke","f":"poll"}
  {"index":5,"time":5000000,"process":1,"type":"ok","f":"poll","records":[{"topic":"t","partition":0,"value":"0-1","offset":0}]}

The "well-formed" verdict says whether the file keeps this format; the
others judge what the system did.

Exit status: 0 when the history is valid, 1 when it is not or a check could
not decide in time, 2 when the file cannot be read or holds no operation.`,
		Example: `  sluice check history.jsonl
  sluice check history.jsonl --json
  sluice check history.jsonl --send-order real-time --linear-timeout 1m`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return usageError("%v", err)
			}
			defer f.Close()
			h, err := history.Read(f)
			if err != nil {
				return usageError("%s: %v", args[0], err)
			}
			if len(h) == 0 {
				return usageError("%s: the history holds no operation, so there is nothing to judge (see sluice check --help for the format)", args[0])
			}
			opts := checkers.DefaultOptions()
			if opts.SendOrder, err = checkers.ParseSendOrder(sendOrder); err != nil {
				return usageError("--send-order: %v", err)
			}
			opts.LinearTimeout, opts.LinearSkip, opts.UnseenIsAnomaly = timeout, skipLinear, !unseenOK
			report := checkers.Check(h, opts)
			out := cmd.OutOrStdout()
			if jsonOut {
				if err := json.NewEncoder(out).Encode(report); err != nil {
					return err
				}
			} else {
				fmt.Fprint(out, report.Text())
			}
			if !report.Valid || report.Unknown {
				return &exitError{code: exitCheckFailed, err: fmt.Errorf("history is not valid")}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&jsonOut, "json", false, "print the report as JSON")
	fl.StringVar(&sendOrder, "send-order", string(checkers.SendOrderInvoke),
		"what nonmonotonic-send compares: 'invoke' (idempotent producers keep invoke order) or 'real-time'")
	fl.DurationVar(&timeout, "linear-timeout", 10*time.Second, "time budget of the linearizability check")
	fl.BoolVar(&skipLinear, "skip-linear", false, "skip the linearizability check")
	fl.BoolVar(&unseenOK, "unseen-ok", false, "do not count acknowledged sends never polled as an anomaly (for histories without a final drain)")
	return cmd
}
