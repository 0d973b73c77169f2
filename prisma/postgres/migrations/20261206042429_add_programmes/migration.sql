-- CreateTable
CREATE TABLE "Programme" (
    "id" TEXT NOT NULL,
    "virtualLiveId" TEXT NOT NULL,
    "timeZone" TEXT NOT NULL,
    "dayStartSecond" INTEGER NOT NULL,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Programme_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ProgrammeFillerItem" (
    "id" TEXT NOT NULL,
    "programmeId" TEXT NOT NULL,
    "position" INTEGER NOT NULL,
    "vodResourceId" TEXT NOT NULL,

    CONSTRAINT "ProgrammeFillerItem_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ProgrammeEntry" (
    "id" TEXT NOT NULL,
    "programmeId" TEXT NOT NULL,
    "position" INTEGER NOT NULL,
    "start" TEXT NOT NULL,
    "durationSeconds" DOUBLE PRECISION,

    CONSTRAINT "ProgrammeEntry_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ProgrammeEntryItem" (
    "id" TEXT NOT NULL,
    "entryId" TEXT NOT NULL,
    "position" INTEGER NOT NULL,
    "vodResourceId" TEXT NOT NULL,

    CONSTRAINT "ProgrammeEntryItem_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "Programme_virtualLiveId_key" ON "Programme"("virtualLiveId");

-- CreateIndex
CREATE INDEX "ProgrammeFillerItem_vodResourceId_idx" ON "ProgrammeFillerItem"("vodResourceId");

-- CreateIndex
CREATE UNIQUE INDEX "ProgrammeFillerItem_programmeId_position_key" ON "ProgrammeFillerItem"("programmeId", "position");

-- CreateIndex
CREATE UNIQUE INDEX "ProgrammeEntry_programmeId_position_key" ON "ProgrammeEntry"("programmeId", "position");

-- CreateIndex
CREATE INDEX "ProgrammeEntryItem_vodResourceId_idx" ON "ProgrammeEntryItem"("vodResourceId");

-- CreateIndex
CREATE UNIQUE INDEX "ProgrammeEntryItem_entryId_position_key" ON "ProgrammeEntryItem"("entryId", "position");

-- AddForeignKey
ALTER TABLE "Programme" ADD CONSTRAINT "Programme_virtualLiveId_fkey" FOREIGN KEY ("virtualLiveId") REFERENCES "VirtualLive"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ProgrammeFillerItem" ADD CONSTRAINT "ProgrammeFillerItem_programmeId_fkey" FOREIGN KEY ("programmeId") REFERENCES "Programme"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ProgrammeFillerItem" ADD CONSTRAINT "ProgrammeFillerItem_vodResourceId_fkey" FOREIGN KEY ("vodResourceId") REFERENCES "VodResource"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ProgrammeEntry" ADD CONSTRAINT "ProgrammeEntry_programmeId_fkey" FOREIGN KEY ("programmeId") REFERENCES "Programme"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ProgrammeEntryItem" ADD CONSTRAINT "ProgrammeEntryItem_entryId_fkey" FOREIGN KEY ("entryId") REFERENCES "ProgrammeEntry"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ProgrammeEntryItem" ADD CONSTRAINT "ProgrammeEntryItem_vodResourceId_fkey" FOREIGN KEY ("vodResourceId") REFERENCES "VodResource"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
