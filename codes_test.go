package mqttkeep_test

import (
	"fmt"
	"testing"

	"github.com/mqttkeep/mqttkeep"
	"github.com/stretchr/testify/assert"
)

// Typed protocol values print as users expect: a reason code's name with
// %v and %s, its number with %d and %X (the "0x%02X" idiom); QoS as
// "QoS n".
func TestReasonCodeAndQoSFormatting(t *testing.T) {
	c := mqttkeep.ReasonCode(0x86)
	assert.Equal(t, "bad user name or password", c.String())
	assert.Equal(t, "0x86 bad user name or password", fmt.Sprintf("0x%02X %v", c, c))
	assert.Equal(t, "134 bad user name or password", fmt.Sprintf("%d %s", c, c))
	assert.Equal(t, "unknown reason code", mqttkeep.ReasonCode(0x7F).String())
	assert.Equal(t, "QoS 1", mqttkeep.QoS1.String())
	assert.Equal(t, "QoS(3)", mqttkeep.QoS(3).String())
	assert.Equal(t, "2", fmt.Sprintf("%d", mqttkeep.QoS2))
}
