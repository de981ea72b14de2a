package metadata

import "fmt"

// Delta is a piece of the metadata log as a controller serves it: records
// from offset From through offset Through (offsets with no metadata record,
// such as a new leader's empty entry, are simply absent), preceded, when the
// log no longer holds From, by a snapshot of the whole state.
type Delta struct {
	From    int64 `json:"from"`
	Through int64 `json:"through"`
	// Snapshot is an encoded State at offset SnapshotOffset, or nil.
	Snapshot       []byte        `json:"snapshot,omitempty"`
	SnapshotOffset int64         `json:"snapshot_offset,omitempty"`
	Records        []OffsetEntry `json:"records,omitempty"`
}

// OffsetEntry is one encoded record and its offset.
type OffsetEntry struct {
	Offset int64  `json:"o"`
	Data   []byte `json:"d"`
}

// Image is a broker's copy of the metadata: the state as of every record
// through Through, built by applying deltas in order.
type Image struct {
	state   *State
	through int64
}

// NewImage is the empty image, before the first record.
func NewImage() *Image { return &Image{state: NewState()} }

// State is the image's state; callers must not change it.
func (im *Image) State() *State { return im.state }

// Next is the offset to fetch from.
func (im *Image) Next() int64 { return im.through + 1 }

// Apply applies a delta. A delta that starts past Next without a snapshot
// would skip records and is refused; records already applied are skipped,
// so a delta fetched twice does no harm.
func (im *Image) Apply(d Delta) error {
	if d.Snapshot != nil && d.SnapshotOffset > im.through {
		s, err := DecodeState(d.Snapshot)
		if err != nil {
			return err
		}
		im.state, im.through = s, d.SnapshotOffset
	}
	if d.From > im.Next() {
		return fmt.Errorf("metadata delta from offset %d would skip records after %d", d.From, im.through)
	}
	for _, e := range d.Records {
		if e.Offset <= im.through {
			continue
		}
		if e.Offset > d.Through {
			return fmt.Errorf("metadata delta through %d holds a record at %d", d.Through, e.Offset)
		}
		r, err := DecodeRecord(e.Data)
		if err != nil {
			return fmt.Errorf("metadata record at offset %d: %w", e.Offset, err)
		}
		im.state.Apply(e.Offset, r)
		im.through = e.Offset
	}
	if d.Through > im.through {
		im.through = d.Through
	}
	return nil
}
