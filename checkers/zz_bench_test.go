package checkers

import (
	"os"
	"testing"

	"github.com/sluice-sim/sluice/checkers/history"
)

func BenchmarkZZFile(b *testing.B) {
	f, err := os.Open(os.Getenv("ZZ_HIST"))
	if err != nil {
		b.Skip()
	}
	h, err := history.Read(f)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("all", func(b *testing.B) {
		for b.Loop() {
			if !Check(h, DefaultOptions()).Valid {
				b.Fatal("invalid")
			}
		}
	})
	b.Run("index", func(b *testing.B) {
		for b.Loop() {
			indexHistory(h)
		}
	})
	ix := indexHistory(h)
	o := DefaultOptions().withDefaults()
	b.Run("history", func(b *testing.B) {
		for b.Loop() {
			checkHistory(ix, o)
		}
	})
	b.Run("kafka", func(b *testing.B) {
		for b.Loop() {
			checkKafka(ix, o)
		}
	})
	b.Run("linear", func(b *testing.B) {
		for b.Loop() {
			checkLinearizable(ix, o)
		}
	})
}
