import FerryPluginKit

/// Applies the compiled `steps` to each record in order. A record a step
/// refuses is rejected with the step's reason and left out of the output;
/// the others go on.
final class MapTransform: TransformPlugin {
    let steps: [MapStep]

    /// - Throws: `PluginError.config` naming the step and field of the first
    ///   problem in `steps`.
    init(config: PluginConfig, context: PluginContext) throws {
        do throws(MapConfigError) {
            steps = try MapStepParser.parse(config.values["steps"])
        } catch {
            throw PluginError.config(error.description)
        }
    }

    func transform(_ input: BatchView, into output: BatchBuilder, rejects: inout Rejects) throws -> TransformOutcome {
        for (index, record) in input.enumerated() {
            // Owned values: steps insert, remove and retype fields, which a view cannot.
            var document = record.decode()
            do throws(StepFailure) {
                for step in steps { try step.apply(to: &document) }
                output.append(document)
            } catch {
                rejects.reject(index, error.description)
            }
        }
        return .built
    }
}
