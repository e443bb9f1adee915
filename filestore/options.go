package filestore

import (
	"fmt"

	"github.com/mqttkeep/mqttkeep"
)

// Defaults of the options.
const (
	// DefaultMaxRecords is the default of [WithMaxRecords].
	DefaultMaxRecords = 1 << 20
	// DefaultMaxBytes is the default of [WithMaxBytes]: 1 GiB.
	DefaultMaxBytes = 1 << 30
	// DefaultSegmentSize is the default of [WithSegmentSize]: 8 MiB.
	DefaultSegmentSize = 8 << 20

	// minSegmentSize is the smallest segment size WithSegmentSize accepts.
	minSegmentSize = 4 << 10
)

// Option configures [Open]. Options are values: they can be printed and
// compared.
type Option interface {
	apply(*options)
}

// options is what the Options set.
type options struct {
	maxRecords  int
	maxBytes    int64
	segmentSize int64
	autoCompact bool
	salvage     bool // Salvage's, never an Option: keep the whole steps around damage
}

func defaultOptions() options {
	return options{
		maxRecords:  DefaultMaxRecords,
		maxBytes:    DefaultMaxBytes,
		segmentSize: DefaultSegmentSize,
		autoCompact: true,
	}
}

func (o *options) validate() error {
	switch {
	case o.maxRecords < 1:
		return fmt.Errorf("filestore: WithMaxRecords(%d): want at least 1: %w", o.maxRecords, mqttkeep.ErrInvalidOption)
	case o.maxBytes < 1:
		return fmt.Errorf("filestore: WithMaxBytes(%d): want at least 1: %w", o.maxBytes, mqttkeep.ErrInvalidOption)
	case o.segmentSize < minSegmentSize:
		return fmt.Errorf("filestore: WithSegmentSize(%d): want at least %d: %w", o.segmentSize, minSegmentSize, mqttkeep.ErrInvalidOption)
	}
	return nil
}

type maxRecordsOption int

func (v maxRecordsOption) apply(o *options) { o.maxRecords = int(v) }

// WithMaxRecords bounds the number of records the store holds. An Apply
// that would leave more returns an error matching [mqttkeep.ErrQueueFull]
// and applies nothing. It must be at least 1; defaults to
// [DefaultMaxRecords] (1,048,576).
func WithMaxRecords(n int) Option { return maxRecordsOption(n) }

type maxBytesOption int64

func (v maxBytesOption) apply(o *options) { o.maxBytes = int64(v) }

// WithMaxBytes bounds the sum of the lengths of the values the store
// holds. An Apply that would leave more returns an error matching
// [mqttkeep.ErrQueueFull] and applies nothing. The files take more room
// than this: up to one segment of dead records plus about 10 bytes of
// framing per record, and twice the live size while compacting. It must
// be at least 1; defaults to [DefaultMaxBytes] (1 GiB).
func WithMaxBytes(n int64) Option { return maxBytesOption(n) }

type segmentSizeOption int64

func (v segmentSizeOption) apply(o *options) { o.segmentSize = int64(v) }

// WithSegmentSize sets the size at which the store starts a new segment
// file (a single step larger than this gets a segment of its own). Each
// new segment costs three fsyncs; a smaller size compacts sooner and keeps
// less dead data on disk. At least 4 KiB; defaults to
// [DefaultSegmentSize] (8 MiB).
func WithSegmentSize(n int64) Option { return segmentSizeOption(n) }

type autoCompactOption bool

func (v autoCompactOption) apply(o *options) { o.autoCompact = bool(v) }

// WithAutoCompact turns compaction in the background on or off. When on,
// the store compacts, in a goroutine of its own, whenever it starts a new
// segment and at least half of the bytes in its older segments belong to
// records that were deleted or replaced. [Store.Compact] works either way.
// Defaults to true.
func WithAutoCompact(on bool) Option { return autoCompactOption(on) }
