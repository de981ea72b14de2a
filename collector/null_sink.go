package collector

// NullSink discards every event, as Flume's NullSink does: the sink to
// measure a channel with.
type NullSink struct {
	name string
}

// Name is the sink's name.
func (s *NullSink) Name() string { return s.name }

// Deliver drops the events.
func (s *NullSink) Deliver(_ []Event, done func(error)) { done(nil) }

// Stop does nothing.
func (s *NullSink) Stop() {}
