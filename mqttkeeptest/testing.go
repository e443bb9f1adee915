package mqttkeeptest

import "testing"

// NewBroker starts a broker listening on 127.0.0.1 with a free port, as
// [StartBroker] does, and closes it when the test ends. It fails the test
// if the broker cannot start.
func NewBroker(tb testing.TB, opts ...BrokerOption) *Broker {
	tb.Helper()
	b, err := StartBroker(opts...)
	if err != nil {
		tb.Fatalf("mqttkeeptest.NewBroker: %v", err)
	}
	tb.Cleanup(b.Close)
	return b
}

// NewPipeBroker starts a broker that opens no socket, as
// [StartPipeBroker] does, and closes it when the test ends. Clients
// connect through [Broker.Pipe]. Inside a testing/synctest bubble, give it
// the bubble's t: the cleanup then runs in the bubble, as it must. It fails
// the test if the broker cannot start.
func NewPipeBroker(tb testing.TB, opts ...BrokerOption) *Broker {
	tb.Helper()
	b, err := StartPipeBroker(opts...)
	if err != nil {
		tb.Fatalf("mqttkeeptest.NewPipeBroker: %v", err)
	}
	tb.Cleanup(b.Close)
	return b
}

// NewProxy starts a proxy to target ("host:port"; for a broker, its
// [Broker.Addr]), as [StartProxy] does, and closes it when the test ends.
// It fails the test if the proxy cannot start.
func NewProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	p, err := StartProxy(target)
	if err != nil {
		tb.Fatalf("mqttkeeptest.NewProxy: %v", err)
	}
	tb.Cleanup(p.Close)
	return p
}
