package mqttkeep

import (
	"context"
	"log/slog"
	"sync/atomic"
)

// clientIDHandler adds the client's MQTT client identifier to every log
// record as "client_id", so that the lines of several clients in one
// process can be told apart. The identifier is read when the record is
// logged: one the broker assigns later (an empty WithClientID) appears
// from then on; until then the attribute is left out.
type clientIDHandler struct {
	h  slog.Handler
	id *atomic.Pointer[string]
}

func (h *clientIDHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.h.Enabled(ctx, level)
}

func (h *clientIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := h.id.Load(); id != nil && *id != "" {
		r = r.Clone()
		r.AddAttrs(slog.String("client_id", *id))
	}
	return h.h.Handle(ctx, r)
}

func (h *clientIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &clientIDHandler{h: h.h.WithAttrs(attrs), id: h.id}
}

func (h *clientIDHandler) WithGroup(name string) slog.Handler {
	return &clientIDHandler{h: h.h.WithGroup(name), id: h.id}
}
