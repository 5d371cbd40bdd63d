package dev.skipflow.job;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;
import static com.tngtech.archunit.library.dependencies.SlicesRuleDefinition.slices;

import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.junit.AnalyzeClasses;
import com.tngtech.archunit.junit.ArchTest;
import com.tngtech.archunit.lang.ArchRule;

/**
 * The layering of DESIGN §1 and the decoder's independence, checked on the compiled classes of every module (the
 * job module's tests see them all): model, then operators, then job; inside job, cli and local on top of the job
 * and options packages; the decoder knowing nothing of what configures it.
 */
@AnalyzeClasses(packages = "dev.skipflow", importOptions = ImportOption.DoNotIncludeTests.class)
class ArchitectureTest {

    @ArchTest
    static final ArchRule noPackageCycles = slices().matching("dev.skipflow.(**)").namingSlices("$1")
            .should().beFreeOfCycles();

    @ArchTest
    static final ArchRule modelStandsAlone = noClasses().that().resideInAPackage("dev.skipflow.model..")
            .should().dependOnClassesThat().resideInAnyPackage("dev.skipflow.operators..", "dev.skipflow.job..",
                    "org.apache.flink..")
            .because("the model is pure inference on DJL, usable without Flink (DESIGN §1)");

    @ArchTest
    static final ArchRule operatorsBelowJob = noClasses().that().resideInAPackage("dev.skipflow.operators..")
            .should().dependOnClassesThat().resideInAPackage("dev.skipflow.job..")
            .because("the job wires the operators, not the other way round (DESIGN §1)");

    @ArchTest
    static final ArchRule decoderKnowsNoConfiguration = noClasses()
            .that().resideInAnyPackage("dev.skipflow.model.decoder..", "dev.skipflow.model.nn..")
            .should().dependOnClassesThat().resideInAnyPackage("dev.skipflow.model.routing..", "dev.skipflow.model.exit..",
                    "dev.skipflow.model.training..", "dev.skipflow.model.eval..", "dev.skipflow.model.report..",
                    "dev.skipflow.model.compression..", "dev.skipflow.job..")
            .because("one forward runs every configuration: routers, exit classifiers, compression and what trains or "
                    + "measures them plug into the decoder, which depends on none of them")
            .allowEmptyShould(true);
}
