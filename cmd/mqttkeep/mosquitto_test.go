package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttkeep/mqttkeep/internal/mosquitto"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mosquittoClient returns the path of mosquitto_pub or mosquitto_sub,
// which come with the broker (package mosquitto-clients).
func mosquittoClient(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	p := filepath.Join(filepath.Dir(mosquitto.Binary()), "..", "bin", name)
	if _, err := exec.LookPath(p); err != nil {
		t.Fatalf("%s not found next to mosquitto: install mosquitto-clients", name)
	}
	return p
}

// mosquitto_pub → mqttkeep sub: the messages arrive, QoS 1, MQTT v5, in
// the order of one publisher connection (mosquitto_pub -l sends each line
// of its stdin as a message).
func TestMosquittoPubToMqttkeepSub(t *testing.T) {
	b := mosquitto.Start(t)
	host, port, _ := strings.Cut(b.Addr(), ":")
	sub := start(t, nil, "sub", "-L", b.URL(), "-t", "cross/#", "-q", "1", "-C", "3", "-v")
	eventually(t, 10*time.Second, "sub subscribed", func() bool { return b.Count("Received SUBSCRIBE") > 0 })
	pub := exec.Command(mosquittoClient(t, "mosquitto_pub"), "-V", "mqttv5", "-h", host, "-p", port,
		"-t", "cross/x", "-l", "-q", "1")
	pub.Stdin = strings.NewReader("hello 0\nhello 1\nhello 2\n")
	out, err := pub.CombinedOutput()
	require.NoError(t, err, "mosquitto_pub: %s", out)
	require.Equal(t, exitOK, sub.wait(t, 15*time.Second), "stderr: %s", sub.stderr)
	assert.Equal(t, []string{"cross/x hello 0", "cross/x hello 1", "cross/x hello 2"}, sub.stdout.lines())
}

// mqttkeep pub → mosquitto_sub.
func TestMqttkeepPubToMosquittoSub(t *testing.T) {
	b := mosquitto.Start(t)
	host, port, _ := strings.Cut(b.Addr(), ":")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	subCmd := exec.CommandContext(ctx, mosquittoClient(t, "mosquitto_sub"), "-V", "mqttv5", "-h", host, "-p", port,
		"-t", "cross/#", "-q", "1", "-C", "2", "-v")
	var out syncBuffer
	subCmd.Stdout, subCmd.Stderr = &out, &out
	require.NoError(t, subCmd.Start())
	eventually(t, 10*time.Second, "mosquitto_sub subscribed", func() bool { return b.Count("Received SUBSCRIBE") > 0 })
	code, _, stderr := runSync(t, strings.NewReader("first line\nsecond line\n"),
		"pub", "-L", b.URL(), "-t", "cross/x", "-q", "1", "-l")
	require.Equal(t, exitOK, code, "stderr: %s", stderr)
	require.NoError(t, subCmd.Wait(), "mosquitto_sub: %s", out.String())
	assert.Equal(t, "cross/x first line\ncross/x second line\n", out.String())
}
