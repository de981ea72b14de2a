// Command sluice finds, reproduces and explains the ways a Kafka + Flume
// style pipeline loses, duplicates or reorders data, and measures how fast
// it goes: seeded fault scenarios in a simulated world, and the same broker
// and collector on real sockets and files.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// Exit statuses scripts and CI rely on.
const (
	exitOK          = 0
	exitCheckFailed = 1
	exitUsage       = 2
)

// exitError carries an exit status out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func usageError(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

func main() {
	root := newRootCommand()
	err := root.Execute()
	if err == nil {
		os.Exit(exitOK)
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.code != exitCheckFailed {
			fmt.Fprintln(os.Stderr, "sluice:", ee.err)
		}
		os.Exit(ee.code)
	}
	// cobra's own errors are about flags and arguments.
	fmt.Fprintln(os.Stderr, "sluice:", err)
	os.Exit(exitUsage)
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "sluice",
		Short: "Find, reproduce and measure data loss, duplication and reordering in Kafka + Flume style pipelines",
		Long: `sluice runs a Kafka-style broker and a Flume-style collector either in a
simulated world (one process, one seed, injected faults, checkers that judge
ordering, no-loss and no-duplicate guarantees) or for real, on sockets and files.`,
		Example: `  sluice sim run --scenario counter --seed 7
  sluice sim run --scenario counter --seed 7 --bug ack-before-sync
  sluice sim run --seed 7 --check-determinism`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError("%v (see %s --help)", err, c.CommandPath())
	})
	root.AddCommand(newSimCommand(), newBrokerCommand(), newWorkloadCommand(), newCheckCommand(), newVersionCommand(), newAgentCommand(), newBenchCommand(),
		newCompareCommand(), newTopicsCommand(), newGroupsCommand(), newClusterCommand())
	return root
}

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version",
		Example: "  sluice version",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), "sluice", version)
			return nil
		},
	}
}

// requireSubcommand makes a command that only groups others refuse to run
// alone or with an unknown subcommand: exit 2 naming the known ones, where
// cobra would print help and exit 0.
func requireSubcommand(parent *cobra.Command) {
	parent.Args = cobra.ArbitraryArgs
	parent.RunE = func(cmd *cobra.Command, args []string) error {
		var known []string
		for _, c := range cmd.Commands() {
			if c.IsAvailableCommand() {
				known = append(known, c.Name())
			}
		}
		if len(args) == 0 {
			cmd.Help()
			return usageError("%s needs a subcommand (known: %s)", cmd.CommandPath(), strings.Join(known, ", "))
		}
		return usageError("unknown command %q for %q (known: %s)", args[0], cmd.CommandPath(), strings.Join(known, ", "))
	}
}
