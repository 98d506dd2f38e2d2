import AuthService
import Shared

// Reads configuration from the environment (names in the README) and runs until SIGTERM.
await ServiceMain.run(AuthConfiguration.self, buildApplication(configuration:logger:))
