import RecordingService
import Shared

// Reads configuration from the environment (names in the README) and runs until SIGTERM.
await ServiceMain.run(RecordingConfiguration.self, buildApplication(configuration:logger:))
