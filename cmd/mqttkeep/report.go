package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mqttkeep/mqttkeep"
)

// reporter writes the command's own lines on stderr, "mqttkeep CMD: ...",
// with the password and URL user information taken out; --quiet silences
// it (bad command lines are still reported).
type reporter struct {
	cmd    string
	w      io.Writer
	secret string
	quiet  bool
	// failFast leaves out the waits before the first connection: the
	// command gives up at the first failed attempt and says why itself.
	failFast bool
}

func (r *reporter) printf(format string, args ...any) {
	if r.quiet {
		return
	}
	fmt.Fprintf(r.w, "mqttkeep %s: %s\n", r.cmd, r.clean(fmt.Sprintf(format, args...)))
}

// clean hides the password and the user information of any URL in s.
// (The command's streams hide them too; this keeps the reporter safe on
// any writer.)
func (r *reporter) clean(s string) string {
	return redactURLs(redactSecret(s, r.secret))
}

// refusal is the broker's refusal in err (its reason code and string),
// or err's cause when it holds none.
func refusal(err error) string {
	var rc *mqttkeep.ReasonCodeError
	if errors.As(err, &rc) {
		return errText(rc)
	}
	return cause(err)
}

// cause is why a connection or an attempt ended, for one line.
func cause(err error) string {
	if err == nil {
		return "no error"
	}
	s := errText(err)
	s = strings.TrimPrefix(s, "connection lost: ")
	return s
}

// reportConnection registers hooks that describe every connection change,
// one line each, each loss and each wait before a new attempt with its
// cause. A final refusal (bad credentials, not authorized, a certificate
// that does not verify) is not printed but sent on stopped, once, for the
// command to report and exit. quietFirst leaves out the first successful
// connection.
func reportConnection(c *mqttkeep.Client, r *reporter, quietFirst bool) (stopped <-chan error) {
	ch := make(chan error, 1)
	connects := 0 // hooks run on one goroutine
	c.OnConnect(func(e mqttkeep.ConnectEvent) {
		connects++
		var msg string
		switch {
		case connects == 1 && quietFirst:
			return
		case connects == 1:
			msg = fmt.Sprintf("connected to %s (keep alive %v)", e.Server, e.KeepAlive)
		default:
			msg = fmt.Sprintf("reconnected to %s after %v (attempt %d, session present %t)",
				e.Server, e.Downtime.Round(time.Millisecond), e.Attempt, e.SessionPresent)
		}
		if e.ResubscribeErr != nil {
			msg += "; restoring subscriptions failed: " + errText(e.ResubscribeErr)
		}
		r.printf("%s", msg)
	})
	c.OnDisconnect(func(e mqttkeep.DisconnectEvent) {
		switch {
		case e.Err == nil: // our own Close
		case e.WillReconnect:
			r.printf("connection lost after %v: %s", e.Uptime.Round(time.Millisecond), cause(e.Err))
		default:
			select {
			case ch <- e.Err:
			default:
			}
		}
	})
	c.OnReconnecting(func(e mqttkeep.ReconnectingEvent) {
		if connects == 0 && r.failFast {
			return
		}
		r.printf("reconnecting in %v (attempt %d): %s", e.Delay.Round(time.Millisecond), e.Attempt, cause(e.Err))
	})
	return ch
}

// Exit statuses of sub and pub beyond the common ones, as mosquitto_sub's
// and mosquitto_pub's.
const (
	// exitTimedOut is sub's status when -W ran out (MOSQ_ERR_TIMEOUT).
	exitTimedOut = 27
)

// refusalStatus is the exit status for a connection that ended with err:
// the CONNACK reason code when the broker refused the client (as
// mosquitto_sub and mosquitto_pub exit), else 1.
func refusalStatus(err error) int {
	var rc *mqttkeep.ReasonCodeError
	if errors.As(err, &rc) && rc.Packet == "CONNACK" && rc.Code >= 0x80 {
		return int(rc.Code)
	}
	return exitFail
}
