package rabbitmq

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/mqttkeep/mqttkeep/internal/childproc"
)

// Ctl runs rabbitmqctl against the node ("rabbitmqctl -n NAME ARGS...")
// with the node's cookie and epmd, bounded by 60 s, and returns its
// output (standard output and error). The error names the command (only
// its first argument: later ones could be secrets) and carries the end of
// the output.
func (n *Node) Ctl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), ctlTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, n.in.ctl, append([]string{"-n", n.name}, args...)...)
	cmd.Env = n.env()
	cmd.Dir = n.dir
	cmd.SysProcAttr = childproc.SysProcAttr()
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		what := "rabbitmqctl"
		if len(args) > 0 {
			what += " " + args[0]
		}
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (after %v)", ctx.Err(), ctlTimeout)
		}
		return out.String(), fmt.Errorf("rabbitmq: %s on %s: %w: %s", what, n.name, err, lastLines(out.String(), 15))
	}
	return out.String(), nil
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// RunningNodes returns the nodes the node's cluster_status lists as
// running (the node itself included).
func (n *Node) RunningNodes() ([]string, error) {
	out, err := n.Ctl("cluster_status", "--formatter", "json")
	if err != nil {
		return nil, err
	}
	var st struct {
		Running []string `json:"running_nodes"`
	}
	if err := json.Unmarshal([]byte(jsonPart(out)), &st); err != nil {
		return nil, fmt.Errorf("rabbitmq: cluster_status on %s: %w: %s", n.name, err, lastLines(out, 5))
	}
	slices.Sort(st.Running)
	return st.Running, nil
}

// jsonPart returns s from its first '{' or '[' on: rabbitmqctl may print
// a line of its own first.
func jsonPart(s string) string {
	if i := strings.IndexAny(s, "{["); i >= 0 {
		return s[i:]
	}
	return s
}

// Queue is one queue as rabbitmqctl list_queues reports it.
type Queue struct {
	Name     string
	Type     string // "classic" or "quorum"
	Durable  bool
	Messages int      // ready and unacknowledged
	Leader   string   // quorum queues: the node of the leader
	Members  []string // quorum queues: the nodes of its replicas
}

// Queues lists the queues of virtual host vhost ("" for "/") seen from
// the node. The MQTT plugin keeps a client's subscriptions in queues
// named "mqtt-subscription-CLIENTIDqos0" and "...qos1".
func (n *Node) Queues(vhost string) ([]Queue, error) {
	if vhost == "" {
		vhost = "/"
	}
	out, err := n.Ctl("list_queues", "-p", vhost, "--formatter", "json",
		"name", "type", "durable", "messages", "leader", "members")
	if err != nil {
		return nil, err
	}
	// Classic queues report leader and members as "" where quorum
	// queues have a node and a list: decode each field by what it is.
	var raw []map[string]any
	if err := json.Unmarshal([]byte(jsonPart(out)), &raw); err != nil {
		return nil, fmt.Errorf("rabbitmq: list_queues on %s: %w: %s", n.name, err, lastLines(out, 5))
	}
	qs := make([]Queue, 0, len(raw))
	for _, r := range raw {
		var q Queue
		q.Name, _ = r["name"].(string)
		q.Type, _ = r["type"].(string)
		q.Durable, _ = r["durable"].(bool)
		if m, ok := r["messages"].(float64); ok {
			q.Messages = int(m)
		}
		q.Leader, _ = r["leader"].(string)
		if ms, ok := r["members"].([]any); ok {
			for _, m := range ms {
				if s, ok := m.(string); ok {
					q.Members = append(q.Members, s)
				}
			}
		}
		qs = append(qs, q)
	}
	return qs, nil
}

// ErrNoQueue is matched by the error of [Node.Queue] for a queue that
// does not exist.
var ErrNoQueue = errors.New("rabbitmq: no such queue")

// Queue returns the queue called name in vhost ("" for "/").
func (n *Node) Queue(vhost, name string) (Queue, error) {
	qs, err := n.Queues(vhost)
	if err != nil {
		return Queue{}, err
	}
	for _, q := range qs {
		if q.Name == name {
			return q, nil
		}
	}
	return Queue{}, fmt.Errorf("%w: %q on %s", ErrNoQueue, name, n.name)
}

// SessionQueue returns the name of the queue that holds the QoS 1
// subscriptions (and queued messages) of a persistent session of
// clientID in RabbitMQ 3.10's MQTT plugin.
func SessionQueue(clientID string) string { return "mqtt-subscription-" + clientID + "qos1" }

// AddVhost creates the virtual host name and gives the node's user
// every permission on it (two rabbitmqctl calls, about 1.5 s on 2 cores).
// An MQTT client reaches it with the user name "NAME:USER"
// (RabbitMQ's convention; see [Node.VhostUser]). Its topics, retained
// messages and queues are its own; client identifiers are not: RabbitMQ
// 3.10 tracks them across virtual hosts, so a CONNECT with the same
// identifier in another virtual host takes the session's connection over.
func (n *Node) AddVhost(name string) error {
	if _, err := n.Ctl("add_vhost", name); err != nil {
		return err
	}
	_, err := n.Ctl("set_permissions", "-p", name, n.cfg.user, ".*", ".*", ".*")
	return err
}

// VhostUser returns the MQTT user name that selects vhost with the
// node's user: "VHOST:USER".
func (n *Node) VhostUser(vhost string) string { return vhost + ":" + n.cfg.user }

// flushRa is evaluated by Flush: it writes to disk the dets tables of
// every Ra system (server registrations and per-server metadata).
const flushRa = `[ok = dets:sync(T) || S <- [quorum_queues, coordination],
                     #{names := #{directory_rev := D, log_meta := M}} <- [ra_system:fetch(S)],
                     T <- [D, M]],
ok.`

// Flush makes the node write to disk what RabbitMQ 3.10 keeps of its
// quorum queues in dets tables that it saves only after 0.5 s (the Ra
// server registrations, names.dets) or 5 s (their terms and votes,
// meta.dets) without access: call it before Kill to model a crash after
// that state reached the disk. Without it, a quorum queue declared
// shortly before a SIGKILL (a new persistent session's) loses its
// registration: on restart RabbitMQ starts an empty queue under the same
// name, which never elects a leader by itself (see waitQuorumLeaders),
// and the messages acknowledged to publishers are gone. Measured here:
// 12 of 12 queued messages lost when killed right after the PUBACK, 0 of
// 12 with Flush first.
func (n *Node) Flush() error {
	out, err := n.Ctl("eval", flushRa)
	if err == nil && strings.TrimSpace(out) != "ok" {
		err = fmt.Errorf("rabbitmq: flush on %s: %s", n.name, lastLines(out, 5))
	}
	return err
}

// quorumLeaders is evaluated on a standalone node: it triggers an
// election in each local quorum queue that has no leader, and returns
// how many it found.
const quorumLeaders = `Stuck = [Name || Q <- rabbit_amqqueue:list_local_quorum_queues(),
                 {Name, _} <- [amqqueue:get_pid(Q)],
                 ra_leaderboard:lookup_leader(Name) =:= undefined],
[ra:trigger_election({Name, node()}) || Name <- Stuck],
length(Stuck).`

// waitQuorumLeaders waits until every quorum queue of a standalone node
// has a leader. A quorum queue whose registration a SIGKILL lost (see
// Flush) is restarted empty and elects no leader (rabbitmq-server issue
// 10070: "leader call - leader not known" in the log), and a CONNECT
// resuming the session it holds then hangs without CONNACK, and so does
// the node's next clean stop. An election triggered on it
// (ra:trigger_election, the workaround given there) elects its only
// member: the session resumes, without the lost messages, and the log
// says so; one triggered on a queue that would have elected anyway does
// no harm. The caller holds n.life.
func (n *Node) waitQuorumLeaders(deadline time.Time) error {
	for {
		out, err := n.Ctl("eval", quorumLeaders)
		if err != nil {
			return n.withLog(err)
		}
		stuck := strings.TrimSpace(out)
		if stuck == "0" {
			return nil
		}
		n.note("elections triggered in quorum queues without a leader (restarted empty: RabbitMQ lost their registration, see Flush): " + stuck)
		if time.Now().After(deadline) {
			return n.withLog(fmt.Errorf("rabbitmq: node %s: %s quorum queues still without a leader", n.name, stuck))
		}
		time.Sleep(time.Second)
	}
}
