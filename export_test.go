package mqttkeep

// HooksForTest registers hooks from New on, as the OnConnect, OnDisconnect,
// OnReconnecting and OnPing methods would right after New: it lets the
// external tests' event recorder go in a list of options. Test builds
// only; nil hooks are skipped.
func HooksForTest(onConnect func(ConnectEvent), onDisconnect func(DisconnectEvent),
	onReconnecting func(ReconnectingEvent), onPing func(PingEvent)) Option {
	return optionFunc(func(c *config) error {
		if onConnect != nil {
			c.onConnect = append(c.onConnect, onConnect)
		}
		if onDisconnect != nil {
			c.onDisconnect = append(c.onDisconnect, onDisconnect)
		}
		if onReconnecting != nil {
			c.onReconnecting = append(c.onReconnecting, onReconnecting)
		}
		if onPing != nil {
			c.onPing = append(c.onPing, onPing)
		}
		return nil
	})
}
