package mqttkeep_test

import (
	"testing"

	"github.com/mqttkeep/mqttkeep/internal/activemq"
	"github.com/mqttkeep/mqttkeep/internal/rabbitmq"
	"go.uber.org/goleak"
)

// TestMain checks for leaked goroutines, and stops the RabbitMQ node and
// the ActiveMQ broker the 3.1.1 tests share, if they started.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(rabbitmq.StopSharedAfter(activemq.StopSharedAfter(m)))
}
