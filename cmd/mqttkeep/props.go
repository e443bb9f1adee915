package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/mqttkeep/mqttkeep"
)

// props are the MQTT v5 properties given with mosquitto's
// "-D command identifier value" (or "-D command user-property name value").
type props struct {
	cmd string // "sub" or "pub": which packets the command sends

	// CONNECT
	sessionExpiry     *uint32
	receiveMaximum    *uint16
	maxPacketSize     *uint32
	topicAliasMaximum *uint16
	problemInfo       *byte
	responseInfo      *byte
	connectUser       []mqttkeep.UserProperty
	authMethod        string
	authData          []byte
	authDataSet       bool

	// PUBLISH and the will
	publish    []mqttkeep.PublishOption
	topicAlias bool
	will       []mqttkeep.PublishOption
	willDelay  *uint32
	willGiven  bool // a will property was given (it needs --will-topic)
	disconnect []mqttkeep.UserProperty
	discExpiry *uint32

	// SUBSCRIBE (sub): user properties, on every subscription
	subscribe []mqttkeep.SubscribeOption
}

// flag returns the multi-word flag -D / --property for parseArgs.
func (p *props) flag() multiArg {
	return multiArg{names: []string{"D", "property"}, take: p.take}
}

// take parses the words after -D.
func (p *props) take(words []string) (int, error) {
	if len(words) < 3 {
		return 0, usagef("-D: want -D COMMAND IDENTIFIER VALUE (or -D COMMAND user-property NAME VALUE)")
	}
	command, id := strings.ToLower(words[0]), strings.ToLower(words[1])
	if id == "user-property" {
		if len(words) < 4 {
			return 0, usagef("-D %s user-property: want a name and a value", command)
		}
		return 4, p.addUser(command, words[2], words[3])
	}
	return 3, p.add(command, id, words[2])
}

// allowed lists, per command, the properties mosquitto_sub and
// mosquitto_pub accept and this command honours.
var allowedProps = map[string][]string{
	"connect": {"authentication-data", "authentication-method", "maximum-packet-size", "receive-maximum",
		"request-problem-information", "request-response-information", "session-expiry-interval", "topic-alias-maximum", "user-property"},
	"publish":    {"content-type", "correlation-data", "message-expiry-interval", "payload-format-indicator", "response-topic", "topic-alias", "user-property"},
	"will":       {"content-type", "correlation-data", "message-expiry-interval", "payload-format-indicator", "response-topic", "user-property", "will-delay-interval"},
	"disconnect": {"session-expiry-interval", "user-property"},
	"subscribe":  {"user-property"},
}

// checkCommand refuses a command this tool does not send or cannot honour.
func (p *props) checkCommand(command, id string) error {
	switch command {
	case "subscribe", "unsubscribe":
		if p.cmd == "pub" {
			return usagef("-D %s: pub sends no %s", command, strings.ToUpper(command))
		}
		if command == "unsubscribe" {
			return usagef("-D unsubscribe %s: not supported: the library's Unsubscribe takes no properties", id)
		}
		if id == "subscription-identifier" {
			return usagef("-D subscribe subscription-identifier: not supported: the library gives every subscription an identifier of its own")
		}
	case "publish":
		if p.cmd != "pub" {
			return usagef("-D publish: %s publishes nothing", p.cmd)
		}
	case "connect", "will", "disconnect":
	case "puback", "pubrec", "pubrel", "pubcomp", "auth":
		return usagef("-D %s: not supported: the library sends its own %s packets", command, strings.ToUpper(command))
	default:
		return usagef("-D %q: unknown command (want connect, publish, will, subscribe or disconnect)", command)
	}
	for _, a := range allowedProps[command] {
		if a == id {
			return nil
		}
	}
	return usagef("-D %s %s: not a property of %s (it takes %s)", command, id, strings.ToUpper(command), strings.Join(allowedProps[command], ", "))
}

func (p *props) addUser(command, key, value string) error {
	if err := p.checkCommand(command, "user-property"); err != nil {
		return err
	}
	u := mqttkeep.UserProperty{Key: key, Value: value}
	switch command {
	case "connect":
		p.connectUser = append(p.connectUser, u)
	case "publish":
		p.publish = append(p.publish, mqttkeep.WithUserProperty(key, value))
	case "will":
		p.will, p.willGiven = append(p.will, mqttkeep.WithUserProperty(key, value)), true
	case "disconnect":
		p.disconnect = append(p.disconnect, u)
	case "subscribe":
		p.subscribe = append(p.subscribe, mqttkeep.WithSubscriptionUserProperty(key, value))
	}
	return nil
}

func (p *props) add(command, id, value string) error {
	if err := p.checkCommand(command, id); err != nil {
		return err
	}
	bad := func(want string) error { return usagef("-D %s %s %q: want %s", command, id, value, want) }
	num := func(bits int, lo uint64) (uint64, error) {
		n, err := strconv.ParseUint(value, 10, bits)
		if err != nil || n < lo {
			return 0, bad(fmt.Sprintf("a number from %d to %d", lo, uint64(1)<<bits-1))
		}
		return n, nil
	}
	opt := func(o mqttkeep.PublishOption) {
		if command == "publish" {
			p.publish = append(p.publish, o)
		} else {
			p.will, p.willGiven = append(p.will, o), true
		}
	}
	switch id {
	case "content-type":
		opt(mqttkeep.WithContentType(value))
	case "response-topic":
		if err := mqttkeep.ValidateTopicName(value); err != nil {
			return usagef("-D %s response-topic: %s", command, errText(err))
		}
		opt(mqttkeep.WithResponseTopic(value))
	case "correlation-data":
		opt(mqttkeep.WithCorrelationData([]byte(value))) // binary, given as a string (as mosquitto takes it)
	case "message-expiry-interval":
		n, err := num(32, 0)
		if err != nil {
			return err
		}
		opt(mqttkeep.WithMessageExpiry(time.Duration(n) * time.Second))
	case "payload-format-indicator":
		switch value {
		case "0": // unspecified bytes: MQTT's default, the same as no property
		case "1":
			opt(mqttkeep.WithPayloadUTF8())
		default:
			return bad("0 (bytes) or 1 (UTF-8)")
		}
	case "topic-alias":
		if _, err := num(16, 1); err != nil {
			return err
		}
		p.topicAlias = true // the library numbers the aliases itself
	case "will-delay-interval":
		n, err := num(32, 0)
		if err != nil {
			return err
		}
		v := uint32(n)
		p.willDelay, p.willGiven = &v, true
	case "session-expiry-interval":
		n, err := num(32, 0)
		if err != nil {
			return err
		}
		v := uint32(n)
		if command == "disconnect" {
			p.discExpiry = &v
		} else {
			p.sessionExpiry = &v
		}
	case "receive-maximum":
		n, err := num(16, 1)
		if err != nil {
			return err
		}
		v := uint16(n)
		p.receiveMaximum = &v
	case "topic-alias-maximum":
		n, err := num(16, 0)
		if err != nil {
			return err
		}
		v := uint16(n)
		p.topicAliasMaximum = &v
	case "maximum-packet-size":
		n, err := num(32, 1)
		if err != nil {
			return err
		}
		v := uint32(n)
		p.maxPacketSize = &v
	case "request-problem-information", "request-response-information":
		if value != "0" && value != "1" {
			return bad("0 or 1")
		}
		v := value[0] - '0'
		if id == "request-problem-information" {
			p.problemInfo = &v
		} else {
			p.responseInfo = &v
		}
	case "authentication-method":
		p.authMethod = value
	case "authentication-data":
		p.authData, p.authDataSet = []byte(value), true
	}
	return nil
}

// options returns the client options for the CONNECT and DISCONNECT
// properties (the will's and PUBLISH's are taken by the will and the
// publisher).
func (p *props) options() ([]mqttkeep.Option, error) {
	var opts []mqttkeep.Option
	if p.receiveMaximum != nil {
		opts = append(opts, mqttkeep.WithReceiveMaximum(int(*p.receiveMaximum)))
	}
	if p.maxPacketSize != nil {
		if *p.maxPacketSize > 268435460 {
			return nil, usagef("-D connect maximum-packet-size %d: MQTT packets are at most 268435460 bytes", *p.maxPacketSize)
		}
		opts = append(opts, mqttkeep.WithMaxPacketSize(int(*p.maxPacketSize)))
	}
	if p.topicAliasMaximum != nil {
		opts = append(opts, mqttkeep.WithInboundTopicAliases(int(*p.topicAliasMaximum)))
	}
	if p.responseInfo != nil && *p.responseInfo == 1 {
		opts = append(opts, mqttkeep.WithRequestResponseInformation())
	}
	if p.problemInfo != nil || len(p.connectUser) > 0 {
		problem, users := p.problemInfo, p.connectUser
		opts = append(opts, mqttkeep.WithConnectPacket(func(cp *mqttkeep.ConnectPacket) {
			if problem != nil {
				cp.RequestProblemInformation = *problem == 1
			}
			cp.UserProperties = append(cp.UserProperties, users...)
		}))
	}
	if p.authDataSet && p.authMethod == "" {
		return nil, usagef("-D connect authentication-data needs -D connect authentication-method")
	}
	if p.authMethod != "" {
		opts = append(opts, mqttkeep.WithAuthenticator(&fixedAuth{method: p.authMethod, data: p.authData}))
	}
	if p.discExpiry != nil || len(p.disconnect) > 0 {
		expiry, users := p.discExpiry, p.disconnect
		opts = append(opts, mqttkeep.WithDisconnectPacket(func(dp *mqttkeep.DisconnectPacket) {
			if expiry != nil {
				dp.SessionExpiry, dp.SessionExpirySet = time.Duration(*expiry)*time.Second, true
			}
			dp.UserProperties = append(dp.UserProperties, users...)
		}))
	}
	if p.topicAlias {
		opts = append(opts, mqttkeep.WithOutboundTopicAliases())
	}
	return opts, nil
}

// fixedAuth is enhanced authentication with one fixed step, what
// "-D connect authentication-method M -D connect authentication-data D"
// sends. A broker that asks for a further step (AUTH 0x18) fails the
// attempt: a command line cannot answer a challenge.
type fixedAuth struct {
	method string
	data   []byte
}

func (a *fixedAuth) Start(context.Context) (string, []byte, error) { return a.method, a.data, nil }

func (a *fixedAuth) Continue(context.Context, []byte) ([]byte, error) {
	return nil, errors.New("the broker asked for a further authentication step, which -D authentication-data cannot answer")
}

func (a *fixedAuth) Done(context.Context, []byte) error { return nil }

// sessionExpirySecs converts mosquitto's -x argument: 0 to 4294967295
// seconds, or -1 / ∞ for a session that never expires (4294967295).
func sessionExpirySecs(s string) (uint32, error) {
	if s == "-1" || s == "∞" {
		return math.MaxUint32, nil
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, errors.New("want seconds from 0 to 4294967295, or -1 or ∞ for a session that never expires")
	}
	return uint32(n), nil
}
